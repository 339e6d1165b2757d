// The HTTP API client: one place for the base URL, the token and error shapes.

export class ApiError extends Error {
  constructor(status, body, fallback) {
    super(body?.message ?? fallback ?? `HTTP ${status}`);
    this.status = status;        // 0: the API could not be reached (network, CORS)
    this.code = body?.code ?? null;
    this.hint = body?.hint ?? null;
  }
}

export function createApi(base, token) {
  const url = (path) => new URL(path.replace(/^\//, ''), base);

  async function request(method, path, body) {
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(url(path), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, null, `cannot reach the API at ${base.origin} (is it running, and does CORS_ORIGINS allow ${window.location.origin}?)`);
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  // Paths the API documents; an endpoint not among them is not asked at all, which
  // keeps the console free of 404s for endpoints this server does not have yet.
  let documented = null;
  function documentedPaths() {
    documented ??= fetch(url('openapi.json'))
      .then((r) => (r.ok ? r.json() : null))
      .then((doc) => (doc ? new Set(Object.keys(doc.paths ?? {})) : null))
      .catch(() => null);
    return documented;
  }

  return {
    base,
    get: (path) => request('GET', path),
    post: (path, body) => request('POST', path, body),

    // GET an endpoint that may not exist on this server: null when it is not
    // documented or answers 404, so its panel can stay hidden.
    async optional(path) {
      const paths = await documentedPaths();
      if (paths && !paths.has(path.split('?')[0])) return null;
      try {
        return await request('GET', path);
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return null;
        throw error;
      }
    },

    websocketUrl() {
      const ws = url('ws');
      ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
      ws.searchParams.set('token', token);
      return ws;
    },
  };
}
