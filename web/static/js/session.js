// Where the API is and which token to use.
//
// The token comes from the URL fragment (/play#token=...), which browsers never
// send to the server, or from the paste box; it is kept in sessionStorage (this
// tab only) and removed from the address bar. `#api=https://host` points the page
// at an API on another origin (that origin must list this page's in CORS_ORIGINS).

const TOKEN_KEY = 'lottery.token';

export function apiBase(location = window.location) {
  const api = new URLSearchParams(location.hash.slice(1)).get('api');
  // Served at <prefix>/play/, the API lives at <prefix>/.
  const base = new URL(api || '../', location.href);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return base;
}

export function takeToken(location = window.location) {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromUrl = params.get('token');
  if (fromUrl) {
    saveToken(fromUrl);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
    return fromUrl.trim();
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}
