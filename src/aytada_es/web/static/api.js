// JSON API calls: same-origin only, the session cookie included, errors as ApiError.

export class ApiError extends Error {
  constructor(status, code, message, fields) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.fields = fields || null;
  }
}

// Read your own writes: every command's answer names where its last event landed
// (X-Aytada-Position); every later read of the read models waits until they have applied it
// (?min_position=), so a page never shows an older state after the person's own action. Kept
// for the tab's session, so the next page read after a click and a navigation waits for it too.
const POSITION_HEADER = "X-Aytada-Position";
const POSITION_KEY = "aytada.written";
const WAITING_READS = [
  /^\/api\/videos$/,
  /^\/api\/projects\/[^/]+$/,
  /^\/api\/scripts$/,
  /^\/api\/images$/,
  /^\/api\/credits$/,
];
let written = storedPosition();
// Dispatched on `document` after every command the server accepted.
export const COMMAND_DONE = "aytada:command";

function storedPosition() {
  try {
    const value = Number(sessionStorage.getItem(POSITION_KEY));
    return Number.isSafeInteger(value) && value > 0 ? value : 0;
  } catch {
    return 0;
  }
}

/** The position of this tab's last command: reads wait for it. */
export function writtenPosition() {
  return written;
}

function remember(response) {
  const value = Number(response.headers.get(POSITION_HEADER));
  if (!Number.isSafeInteger(value) || value <= written) return;
  written = value;
  try {
    sessionStorage.setItem(POSITION_KEY, String(value));
  } catch {
    // storage refused (private mode, quota): this page still waits for it
  }
}

function withPosition(path, method) {
  if (method !== "GET" || written <= 0) return path;
  const url = new URL(path, location.origin);
  if (!WAITING_READS.some((pattern) => pattern.test(url.pathname))) return path;
  const asked = Number(url.searchParams.get("min_position")) || 0; // a caller's own, if later
  url.searchParams.set("min_position", String(Math.max(asked, written)));
  return url.pathname + url.search;
}

export async function api(path, { method = "GET", body } = {}) {
  path = withPosition(path, method);
  const init = {
    method,
    mode: "same-origin",
    credentials: "same-origin",
    cache: "no-store",
    headers: { Accept: "application/json" },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (cause) {
    throw new ApiError(0, "network", "The server could not be reached. Check your connection.");
  }
  if (response.status === 401) {
    const next = location.pathname + location.search;
    location.assign(`/login?next=${encodeURIComponent(next)}`);
    throw new ApiError(401, "unauthenticated", "Your session has ended. Please sign in again.");
  }
  if (response.ok) remember(response);
  if (response.ok && method !== "GET") {
    // a command may reserve or release credits: what shows them reads again (balance.js)
    document.dispatchEvent(new CustomEvent(COMMAND_DONE));
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(
      response.status,
      error.code || `http_${response.status}`,
      error.message || response.statusText || "Something went wrong.",
      error.fields,
    );
  }
  return data;
}

/** A sentence a person can act on, for an ApiError from a command. */
export function explain(error) {
  if (!(error instanceof ApiError)) return String(error && error.message ? error.message : error);
  if (error.status === 402) return `Not enough credits: ${error.message}`;
  if (error.status === 409) return `This step can't run right now: ${error.message}`;
  if (error.status === 404) return "This project no longer exists.";
  if (error.status === 422) {
    const fields = error.fields ? Object.entries(error.fields) : [];
    const detail = fields.map(([field, why]) => `${field}: ${formatWhy(why)}`).join("; ");
    return detail ? `Please check the form. ${detail}` : `Please check the form. ${error.message}`;
  }
  return error.message;
}

function formatWhy(why) {
  if (Array.isArray(why)) return why.join(", ");
  if (why && typeof why === "object") return JSON.stringify(why);
  return String(why);
}
