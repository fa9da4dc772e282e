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

export async function api(path, { method = "GET", body } = {}) {
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
