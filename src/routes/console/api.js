// The console's only way to the service: the public API under `v1/`, relative to the page (so
// it also works behind a proxy that adds a path prefix), with the signed-in key as bearer token.
//
// The key is kept in this tab's sessionStorage and nowhere else: not in the origin's lasting
// storage, not in a URL, not in a cookie. Closing the tab or signing out forgets it.

const STORAGE_KEY = "admin-api-keys.console.key";

export function storedKey() {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function storeKey(key) {
  sessionStorage.setItem(STORAGE_KEY, key);
}

export function forgetKey() {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** An answer the API refused: `message` is the envelope's `error.message`. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `The service answered ${status}.`);
    this.status = status;
    this.code = error?.code ?? null;
    this.param = error?.param ?? null;
  }
}

/**
 * Calls `path` (below `v1/`) with `method`; `query` (an object, arrays repeat the parameter) and
 * `body` (sent as JSON) are optional. Resolves to the parsed JSON answer, or rejects with an
 * ApiError carrying the envelope's message.
 */
export async function call(method, path, { query, body, key } = {}) {
  const url = new URL(`v1/${path}`, document.baseURI);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) url.searchParams.append(name, one);
  }
  const headers = { Authorization: `Bearer ${key ?? storedKey() ?? ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new ApiError(0, { message: "The service cannot be reached. Check that it is running." });
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) throw new ApiError(response.status, json?.error);
  return json;
}

export const get = (path, query) => call("GET", path, { query });
export const post = (path, body = {}) => call("POST", path, { body });
export const del = (path) => call("DELETE", path);

/** Path segment for an id taken from the API or the page's address. */
export const seg = (id) => encodeURIComponent(id);
