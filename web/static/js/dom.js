// DOM building without innerHTML: every value that comes from the API lands as text.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name === 'style') for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop, v);
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function fill(root, ...children) {
  root.replaceChildren();
  append(root, children);
  return root;
}

// A definition-list entry whose value carries the raw API figure in data-value,
// so that what is shown can be checked against what the API said.
export function fact(label, text, field, value) {
  return [h('dt', {}, label), h('dd', { dataset: { field, value: String(value) } }, text)];
}

export function errorText(error) {
  const hint = error.hint ? ` ${error.hint}` : '';
  return `${error.message}${hint}`;
}

// Whether the user asked for less motion: animations then jump to their end.
export function reducedMotion() {
  return window.matchMedia('(prefers-reduced-motion: reduce)').matches;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
