// Landing page: translates the page and mounts the language switch.
import { initI18n } from './i18n.js';

initI18n();
