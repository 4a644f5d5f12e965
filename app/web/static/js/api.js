// The daemon's local API (app/api), authorized by the session cookie that
// /ui/login set. Errors carry the API's status and stable code.

export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) {
  onUnauthorized = f;
}

async function call(method, path, body, raw) {
  const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (raw !== undefined) {
    opts.headers["Content-Type"] = "application/octet-stream";
    opts.body = raw;
  } else if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    throw new APIError(0, "daemon_unreachable", "The Parley daemon does not answer: is it running?");
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    if (res.status === 401) onUnauthorized();
    const msg = (data && data.error) || `${method} ${path}: HTTP ${res.status}`;
    throw new APIError(res.status, (data && data.code) || "", msg);
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body = {}) => call("POST", path, body);
// postBytes sends a Blob (a picked File) as the raw body.
export const postBytes = (path, blob) => call("POST", path, undefined, blob);

// q builds a query string from an object, skipping empty values.
export function q(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, String(v));
  const s = u.toString();
  return s ? "?" + s : "";
}
