// Where the API is and which token to use.
//
// The token comes from the URL fragment (/play#token=...), which browsers never
// send to the server, or from the paste box; it is kept in sessionStorage (this
// tab only) and removed from the address bar. `#api=https://host/` points the page
// at an API on another origin (that API must list this page's origin in
// CORS_ORIGINS). A kept token is only ever sent to the API it was given for, so a
// link naming another API cannot make the page hand it over.

export function apiBase(location = window.location) {
  const api = new URLSearchParams(location.hash.slice(1)).get('api');
  // Served at <prefix>/play/, the API lives at <prefix>/.
  const base = new URL(api || '../', location.href);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  base.search = '';
  base.hash = '';
  return base;
}

const keyFor = (base) => `lottery.token ${base.href}`;

export function takeToken(base, location = window.location) {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromUrl = params.get('token');
  if (fromUrl) {
    saveToken(base, fromUrl);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
  }
  return sessionStorage.getItem(keyFor(base));
}

export function saveToken(base, token) {
  sessionStorage.setItem(keyFor(base), token.trim());
}

export function forgetToken(base) {
  sessionStorage.removeItem(keyFor(base));
}
