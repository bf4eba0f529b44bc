// Talks to the service's public HTTP API (docs/api.md). Every failure becomes an ApiError whose
// message is a sentence a person can read; the API key is asked for once, when a call needs it.

const KEY_STORAGE = "adgm-api-key";

export class ApiError extends Error {
  constructor(message, status = 0, fields = []) {
    super(message);
    this.status = status;
    this.fields = fields; // [{field, message}] from a 422 validation answer
  }
}

/** URL of an API route, relative to the page so the service may sit under a path prefix. */
export function apiUrl(path, query = {}) {
  const url = new URL(path, document.baseURI);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  return url.toString();
}

/** Turns FastAPI's validation list into [{field, message}]. */
function validationFields(detail) {
  return detail.map((item) => {
    const loc = Array.isArray(item.loc) ? item.loc.filter((part) => !["body", "query", "path"].includes(part)) : [];
    return { field: loc.join("."), message: item.msg || JSON.stringify(item) };
  });
}

/** Reads an error answer into an ApiError, whatever shape its body has. */
export async function errorFromResponse(response) {
  const fallback = `The server answered ${response.status} ${response.statusText}`.trim() + ".";
  let body = null;
  try {
    body = await response.clone().json();
  } catch {
    const text = await response.text().catch(() => "");
    return new ApiError(text.trim() ? `${fallback} ${text.trim().slice(0, 300)}` : fallback, response.status);
  }
  const detail = body && body.detail;
  if (typeof detail === "string") return new ApiError(detail, response.status);
  if (Array.isArray(detail)) {
    const fields = validationFields(detail);
    const message = fields.map((f) => (f.field ? `${f.field}: ${f.message}` : f.message)).join("\n");
    return new ApiError(message || fallback, response.status, fields);
  }
  return new ApiError(fallback, response.status);
}

function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

let pendingKeyRequest = null;

/** Shows the key dialog (once, even when several calls need it at the same time). */
function askForKey(reason) {
  if (pendingKeyRequest) return pendingKeyRequest;
  const dialog = document.getElementById("key-dialog");
  const form = document.getElementById("key-form");
  const input = document.getElementById("key-input");
  document.getElementById("key-reason").textContent = reason;
  input.value = "";
  pendingKeyRequest = new Promise((resolve) => {
    const finish = (key) => {
      form.removeEventListener("submit", onSubmit);
      cancelButton.removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      pendingKeyRequest = null;
      resolve(key);
    };
    const onSubmit = (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (key) finish(key);
    };
    const onCancel = (event) => {
      event.preventDefault();
      finish(null);
    };
    const cancelButton = document.getElementById("key-cancel");
    form.addEventListener("submit", onSubmit);
    cancelButton.addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    input.focus();
  });
  return pendingKeyRequest;
}

async function send(method, path, { query, json, form } = {}) {
  const changesState = method !== "GET";
  const attempt = () => {
    const headers = {};
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = form;
    }
    const key = storedKey();
    if (changesState && key) headers.Authorization = `Bearer ${key}`;
    return fetch(apiUrl(path, query), { method, headers, body }).catch((error) => {
      throw new ApiError(`Could not reach the server (${error.message}).`);
    });
  };

  let response = await attempt();
  if (response.status === 401 && changesState) {
    const rejected = storedKey() !== null;
    sessionStorage.removeItem(KEY_STORAGE);
    const detail = (await errorFromResponse(response)).message;
    const key = await askForKey(rejected ? `The key was not accepted: ${detail}` : detail);
    if (key === null) throw new ApiError(`${detail} (no API key given)`, 401);
    sessionStorage.setItem(KEY_STORAGE, key);
    response = await attempt();
    if (response.status === 401) sessionStorage.removeItem(KEY_STORAGE);
  }
  if (!response.ok) throw await errorFromResponse(response);
  return response;
}

export async function getJson(path, query) {
  return (await send("GET", path, { query })).json();
}

export async function postJson(path, json) {
  const response = await send("POST", path, { json });
  return response.status === 204 ? null : response.json();
}

export async function postForm(path, form, query) {
  return send("POST", path, { form, query });
}

/** Shows an error message in an element (role="alert"), or hides it when message is empty. */
export function showError(element, error) {
  const message = error ? (error.message || String(error)) : "";
  element.textContent = message;
  element.hidden = !message;
}
