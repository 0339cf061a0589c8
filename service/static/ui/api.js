// The service's public API as the page calls it: the bearer token from session storage (never in a
// URL), errors turned into sentences a person can act on, and a busy signal for slow calls.

const TOKEN_KEY = "vae-service-token";
const BUSY_AFTER_MS = 150; // quicker answers would only make the indicator flicker

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (value) => (value ? sessionStorage.setItem(TOKEN_KEY, value) : sessionStorage.removeItem(TOKEN_KEY)),
};

let pending = 0;
const listeners = new Set();
export function onBusy(listener) {
  listeners.add(listener);
}
function busy(delta, label) {
  pending += delta;
  for (const listener of listeners) listener(pending > 0, label);
}

function explain(status, body, retryAfter) {
  // the service's errors are {"detail": str | [{loc, msg}], "field": str}
  const detail = body && body.detail;
  let text = typeof detail === "string" ? detail : "";
  if (Array.isArray(detail) && detail.length) {
    text = detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("; ");
  }
  if (status === 401) return `This service needs an API token: enter it above. (${text || "unauthorized"})`;
  if (status === 413) return `Too large for the service: ${text || "the request is over its limit"}.`;
  if (status === 429 || status === 503) {
    const wait = retryAfter ? ` Try again in ${retryAfter} s.` : " Try again in a moment.";
    return `The service is busy right now (${status}).${wait}`;
  }
  if (status === 415) return `That file is not an image the service can read: ${text}`;
  return text || `The service answered ${status}.`;
}

// One call: JSON or FormData in, JSON out; ApiError with a person's message on any failure.
export async function call(path, { body, label = "Working…", method } = {}) {
  const headers = { Accept: "application/json" };
  const bearer = token.get();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let shown = false;
  const timer = setTimeout(() => {
    shown = true;
    busy(1, label);
  }, BUSY_AFTER_MS);
  try {
    let response;
    try {
      response = await fetch(path, { method: method || (body === undefined ? "GET" : "POST"), headers, body: payload });
    } catch (e) {
      throw new ApiError(0, `The service cannot be reached (${e.message}).`);
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      throw new ApiError(response.status, explain(response.status, data, response.headers.get("Retry-After")), data && data.field);
    }
    return data;
  } finally {
    clearTimeout(timer);
    if (shown) busy(-1, label);
  }
}

// Uploads go as multipart form data, as a browser sends files: one field per option.
export function form(files, fields) {
  const data = new FormData();
  for (const [blob, name] of files) data.append("files", blob, name);
  for (const [key, value] of Object.entries(fields)) if (value !== undefined && value !== null) data.append(key, String(value));
  return data;
}

export const png = (b64) => `data:image/png;base64,${b64}`;
