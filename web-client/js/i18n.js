// Interface strings in Simplified Chinese and English. The language comes
// from `?lang=zh|en`, then the saved choice, then navigator.language (zh* →
// zh-CN, otherwise en). Elements carry their key in `data-i18n` (plus
// `data-i18n-args` JSON for placeholders, `data-i18n-placeholder` /
// `data-i18n-title` for attributes), so switching language re-renders them.

import { STRINGS } from './strings.js';

const STORE_KEY = 'classcast.lang';
const listeners = new Set();
let current = 'en';

function normalize(value) {
  if (!value) return null;
  const v = String(value).toLowerCase();
  if (v.startsWith('zh')) return 'zh-CN';
  if (v.startsWith('en')) return 'en';
  return null;
}

function stored() {
  try { return localStorage.getItem(STORE_KEY); } catch { return null; }
}

function detect() {
  const fromQuery = normalize(new URLSearchParams(location.search).get('lang'));
  if (fromQuery) return fromQuery;
  return normalize(stored()) || normalize(navigator.language) || 'en';
}

export function lang() {
  return current;
}

/** Looks up `key`, filling `{name}` placeholders from `args`. */
export function t(key, args) {
  const table = STRINGS[current] || STRINGS.en;
  let text = table[key] ?? STRINGS.en[key];
  if (text == null) {
    console.warn(`missing string ${key}`);
    return key;
  }
  if (args) text = text.replace(/\{(\w+)\}/g, (m, name) => (args[name] ?? m));
  return text;
}

/** Sets an element's text from a key and remembers the key for re-rendering. */
export function setText(el, key, args) {
  el.dataset.i18n = key;
  if (args && Object.keys(args).length) el.dataset.i18nArgs = JSON.stringify(args);
  else delete el.dataset.i18nArgs;
  el.textContent = t(key, args);
}

function argsOf(el) {
  try { return el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : undefined; } catch { return undefined; }
}

/** Re-renders every keyed element under `root`. */
export function translate(root = document) {
  root.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n, argsOf(el)); });
  for (const attr of ['placeholder', 'title', 'aria-label']) {
    const data = `data-i18n-${attr}`;
    root.querySelectorAll(`[${data}]`).forEach((el) => el.setAttribute(attr, t(el.getAttribute(data))));
  }
}

export function setLang(next, { save = true } = {}) {
  current = normalize(next) || 'en';
  document.documentElement.lang = current;
  if (save) {
    try { localStorage.setItem(STORE_KEY, current); } catch { /* private mode */ }
  }
  translate();
  document.querySelectorAll('.lang-switch button').forEach((b) => {
    b.setAttribute('aria-pressed', String(b.dataset.lang === current));
  });
  listeners.forEach((fn) => fn(current));
}

/** Calls `fn` after every language switch; returns a function that stops it. */
export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Adds the 中文 / EN switch to `container`. */
export function mountLangSwitch(container) {
  const box = document.createElement('div');
  box.className = 'lang-switch';
  box.setAttribute('role', 'group');
  box.setAttribute('aria-label', 'Language / 语言');
  for (const [code, label] of [['zh-CN', '中文'], ['en', 'EN']]) {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.lang = code;
    b.textContent = label;
    b.setAttribute('aria-pressed', String(code === current));
    b.addEventListener('click', () => setLang(code));
    box.append(b);
  }
  container.append(box);
}

/** Picks the language, translates the page and mounts the switch(es). */
export function initI18n() {
  setLang(detect(), { save: false });
  document.querySelectorAll('[data-lang-switch]').forEach(mountLangSwitch);
}
