// Entry point of observer.html: the classroom TV layout, watch only.
import { startTv } from './tv.js';

startTv({ role: 'observer', publishes: false });
