// How figures are shown. Only presentation: every value comes from the API as it is.

const SUFFIXES = ['', 'K', 'M', 'G', 'T', 'P', 'E', 'Z'];

// 238732.9 -> "238.73K", as the operator's CLI prints difficulties.
export function difficulty(value) {
  if (!(value > 0)) return '0';
  let scaled = value;
  let i = 0;
  while (scaled >= 1000 && i < SUFFIXES.length - 1) {
    scaled /= 1000;
    i += 1;
  }
  return i === 0 ? trim(scaled.toFixed(2)) : `${scaled.toFixed(2)}${SUFFIXES[i]}`;
}

function trim(text) {
  return text.replace(/\.?0+$/, '');
}

export function integer(value) {
  return Number(value).toLocaleString('en-US');
}

export function percent(value) {
  return `${Number(value).toFixed(1)}%`;
}

export function ordinal(n) {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' }[n % 10] ?? 'th');
  return `${n}${suffix}`;
}

// "2026-11-23T00:00:00Z" -> "2026-11-23"
export function day(iso) {
  return iso.slice(0, 10);
}

export function weekRange(weekStart, weekEnd) {
  return `${day(weekStart)} – ${day(weekEnd)}`;
}

// "2026-12-01T20:40:45.674627Z" -> "2026-12-01 20:40 UTC"
export function utc(iso) {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

// milliseconds -> "5d 03:12:44"
export function countdown(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(total / 86400);
  const clock = [Math.floor(total / 3600) % 24, Math.floor(total / 60) % 60, total % 60]
    .map((n) => String(n).padStart(2, '0')).join(':');
  return days ? `${days}d ${clock}` : clock;
}

export const DAY_NAMES = { mon: 'Monday', tue: 'Tuesday', wed: 'Wednesday', thu: 'Thursday',
  fri: 'Friday', sat: 'Saturday', sun: 'Sunday' };
