// Talks to the service's public HTTP API (docs/api.md). Every failure becomes an ApiError whose
// message is a sentence a person can read. With ADGM_API_KEY set every data route needs a key: it
// is asked for when a call is refused, kept for this tab, and sent with every request, images and
// the job event stream included.

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

async function send(method, path, { query, json, form, headers: extraHeaders = {}, signal } = {}) {
  const attempt = (key) => {
    const headers = { ...extraHeaders };
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = form;
    }
    if (key) headers.Authorization = `Bearer ${key}`;
    return fetch(apiUrl(path, query), { method, headers, body, signal }).catch((error) => {
      throw new ApiError(`Could not reach the server (${error.message}).`);
    });
  };

  // Every request carries the key once the page has one; a 401 asks for it (again), until the
  // person cancels. Requests refused together share one dialog.
  let key = storedKey();
  let response = await attempt(key);
  while (response.status === 401) {
    const detail = (await errorFromResponse(response)).message;
    if (storedKey() !== key) {
      key = storedKey(); // another request was given a key meanwhile
    } else {
      sessionStorage.removeItem(KEY_STORAGE);
      key = await askForKey(key === null ? detail : `The key was not accepted: ${detail}`);
      if (key === null) throw new ApiError(`${detail} (no API key given)`, 401);
      sessionStorage.setItem(KEY_STORAGE, key);
    }
    response = await attempt(key);
  }
  if (!response.ok) throw await errorFromResponse(response);
  return response;
}

/** An object URL of an image route's answer: fetched with the key, which an <img src> could not send. */
export async function imageUrl(path, query) {
  return URL.createObjectURL(await (await send("GET", path, { query })).blob());
}

/** The events of a text/event-stream body: {event, data, id}. */
async function* serverSentEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { event: "message", data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split("\n");
    buffer = lines.pop();
    for (const raw of lines) {
      const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      if (line === "") {
        if (event.data.length) yield { event: event.event, data: event.data.join("\n"), id: event.id };
        event = { event: "message", data: [], id: null };
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event.event = text;
        else if (field === "data") event.data.push(text);
        else if (field === "id") event.id = text;
      }
    }
  }
}

const RECONNECT_MS = 2000;

/**
 * Follows a Server-Sent Events route with fetch, so that the key goes in a header (EventSource
 * cannot send one). Like EventSource it reconnects after a lost connection, from the last event
 * id. `onEvent(name, data)` gets each event, `onState("open" | "lost")` the connection's state,
 * `onRefused(error)` an error answer (the stream then stops). Returns {close()}.
 */
export function followEvents(path, { onEvent, onState, onRefused }) {
  const controller = new AbortController();
  let closed = false;
  let lastId = null;
  (async () => {
    while (!closed) {
      try {
        const headers = lastId === null ? {} : { "Last-Event-ID": lastId };
        const response = await send("GET", path, { headers, signal: controller.signal });
        onState("open");
        for await (const event of serverSentEvents(response.body)) {
          if (event.id !== null) lastId = event.id;
          onEvent(event.event, event.data);
          if (closed) return;
        }
      } catch (error) {
        if (closed) return;
        if (error instanceof ApiError && error.status) {
          onRefused(error);
          return;
        }
      }
      onState("lost");
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
    }
  })();
  return {
    close() {
      closed = true;
      controller.abort();
    },
  };
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
