// The console's SMS panel: the space's threads, the messages of the one picked (with delivery status, refreshed
// while it is shown), and a form sending a message from one of the space's SMS-enabled numbers through the REST
// API (POST /v1/spaces/{space}/messages). Refusals (opted-out recipient 409, viewer key 403, bad field 422) are
// shown with the API's reason. Same key as the rest of the page (this tab's session storage).
const KEY_STORAGE = "bivariant-console-key";
const REFRESH_MS = 2000;
const FAILED = new Set(["failed", "undelivered"]);

const $ = (id) => document.getElementById(id);

const sms = { spaceId: null, numbers: [], threads: [], threadId: null, thread: null, messages: [], answers: [] };
window.consoleSms = sms; // what the panel shows, for people debugging and for the browser tests

async function api(path, options = {}) {
  const key = sessionStorage.getItem(KEY_STORAGE);
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${key}`, "content-type": "application/json", ...(options.headers || {}) },
  });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  return { status: response.status, ok: response.ok, body };
}

function reason(answer) {
  const detail = answer.body && answer.body.detail;
  return typeof detail === "string" ? detail : `HTTP ${answer.status}`;
}

function space(path) {
  return `/v1/spaces/${encodeURIComponent(sms.spaceId)}${path}`;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

// ----------------------------------------------------------------------------- loading
async function load(spaceId) {
  if (!spaceId) return;
  if (spaceId !== sms.spaceId) {
    sms.spaceId = spaceId;
    sms.threadId = sms.thread = null;
    sms.messages = [];
    $("sms-messages").replaceChildren();
    $("sms-thread-info").textContent = "Pick a thread to see its messages.";
    $("sms-answer").textContent = "";
    await loadNumbers();
  }
  await loadThreads();
  if (sms.threadId) await loadThread(sms.threadId);
}

async function loadNumbers() {
  const answer = await api(space("/phone-numbers?limit=200"));
  sms.numbers = answer.ok ? answer.body.data.filter((n) => n.sms_enabled && n.enabled !== false) : [];
  const from = $("sms-from");
  from.replaceChildren(...sms.numbers.map((n) => new Option(n.e164, n.e164)));
  $("sms-send").disabled = sms.numbers.length === 0;
  if (!answer.ok) $("sms-answer").textContent = `numbers: ${answer.status} — ${reason(answer)}`;
}

async function loadThreads() {
  const answer = await api(space("/sms-threads?limit=200"));
  if (!answer.ok) {
    $("sms-answer").textContent = `threads: ${answer.status} — ${reason(answer)}`;
    return;
  }
  sms.threads = answer.body.data.sort((a, b) => (b.last_message_at || "").localeCompare(a.last_message_at || ""));
  $("sms-empty").hidden = sms.threads.length > 0;
  $("sms-threads").replaceChildren(...sms.threads.map(threadItem));
}

function threadItem(thread) {
  const item = document.createElement("li");
  item.dataset.threadId = thread.id;
  item.className = thread.id === sms.threadId ? "selected" : "";
  item.tabIndex = 0;
  item.textContent = thread.party;
  const meta = document.createElement("span");
  meta.className = "muted";
  meta.textContent = `via ${thread.our_number} · last ${when(thread.last_message_at)}`;
  item.append(meta);
  const pick = () => selectThread(thread.id);
  item.addEventListener("click", pick);
  item.addEventListener("keydown", (event) => { if (event.key === "Enter") pick(); });
  return item;
}

async function selectThread(threadId) {
  sms.threadId = threadId;
  for (const item of $("sms-threads").children) {
    item.classList.toggle("selected", item.dataset.threadId === threadId);
  }
  await loadThread(threadId);
}

async function loadThread(threadId) {
  const [detail, messages] = await Promise.all([
    api(space(`/sms-threads/${encodeURIComponent(threadId)}`)),
    api(space(`/sms-threads/${encodeURIComponent(threadId)}/messages?limit=200`)),
  ]);
  if (threadId !== sms.threadId) return; // another thread was picked meanwhile
  const info = $("sms-thread-info");
  if (detail.ok) {
    const t = detail.body;
    sms.thread = t;
    const failures = t.failures.length ? ` · ${t.failures.length} failed` : "";
    info.textContent = `${t.party} ↔ ${t.our_number} · ${t.state}${t.opted_out ? " (opted out)" : ""}` +
      ` · ${t.pending} queued${failures}`;
  } else {
    info.textContent = `thread: ${detail.status} — ${reason(detail)}`;
  }
  if (!messages.ok) return;
  sms.messages = messages.body.data;
  $("sms-messages").replaceChildren(...sms.messages.map(messageItem));
}

function messageItem(message) {
  const item = document.createElement("li");
  const status = message.delivery_status || "";
  item.className = `${message.direction || "inbound"}${FAILED.has(status) ? " failed" : ""}`;
  item.dataset.messageId = message.id;
  item.textContent = message.text; // text, never markup: bodies come from anyone
  const meta = document.createElement("span");
  meta.className = "status";
  const error = message.error_code ? ` (error ${message.error_code})` : "";
  meta.textContent = `${message.role} · ${status}${error} · ${when(message.created_at)}`;
  item.append(meta);
  return item;
}

// ----------------------------------------------------------------------------- sending
async function send(event) {
  event.preventDefault();
  if (!sms.spaceId) return;
  const payload = { from_number: $("sms-from").value, to_number: $("sms-to").value.trim(), body: $("sms-body").value };
  $("sms-send").disabled = true;
  // One key per press: a retried request (the network, a 503) is the same message.
  const headers = { "Idempotency-Key": crypto.randomUUID() };
  const answer = await api(space("/messages"), { method: "POST", body: JSON.stringify(payload), headers });
  $("sms-send").disabled = sms.numbers.length === 0;
  const text = answer.ok
    ? `sent: ${answer.status} — queued ${answer.body.id} (${answer.body.segments} segment` +
      `${answer.body.segments === 1 ? "" : "s"}, ${answer.body.encoding})`
    : `send: ${answer.status} — ${reason(answer)}`;
  sms.answers.push({ status: answer.status, text, body: answer.body });
  $("sms-answer").textContent = text;
  if (answer.ok) {
    $("sms-body").value = "";
    await loadThreads();
    await selectThread(answer.body.thread_id);
  }
}

// ----------------------------------------------------------------------------- wiring
$("sms-form").addEventListener("submit", send);
$("sms-refresh").addEventListener("click", () => load(sms.spaceId));
// The page fills the space list after sign-in; a space picked (or filled in) loads its SMS.
$("space").addEventListener("change", () => load($("space").value));
new MutationObserver(() => load($("space").value)).observe($("space"), { childList: true });
if ($("space").value) load($("space").value);
setInterval(() => {
  if (sms.spaceId && !document.hidden && !$("app").hidden) load(sms.spaceId);
}, REFRESH_MS);
