// The console page: sign in with an API key, pick a space and an agent or number, call it from the browser.
// The wire protocol is models/console_protocol.py; these constants mirror it (keep them in step).
const PROTOCOL = {
  path: "/media/console",
  sampleRate: 16000,
  frameSamples: 320,
  close: {
    1000: "call ended", 1007: "malformed message", 1009: "frame too large", 1011: "server error",
    4401: "unauthorized", 4403: "forbidden", 4404: "not found", 4408: "no hello in time", 4409: "call refused",
  },
};
const KEY_STORAGE = "bivariant-console-key"; // sessionStorage: this tab only, never a URL

const $ = (id) => document.getElementById(id);

// What the page has done, for people debugging and for the browser tests.
const state = {
  status: "idle",
  callId: null,
  workflowId: null,
  transcript: [],
  turns: [],
  agentSamplesPlayed: 0,
  agentSegmentsPlayed: 0,
  closed: null,
  apiAnswers: [],
};
window.consoleState = state;

let call = null; // {ws, context, stream, spaceId, callId}

// ----------------------------------------------------------------------------- REST
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
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg).join("; ");
  return `HTTP ${answer.status}`;
}

async function listAll(path) {
  const answer = await api(`${path}?limit=200`);
  if (!answer.ok) throw new Error(reason(answer));
  return answer.body.data;
}

// ----------------------------------------------------------------------------- sign in
async function signIn(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
  const answer = await api("/v1/spaces?limit=200");
  if (!answer.ok) {
    sessionStorage.removeItem(KEY_STORAGE);
    $("sign-in-error").textContent = `Sign-in failed: ${reason(answer)}`;
    return;
  }
  $("sign-in-error").textContent = "";
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  const spaces = $("space");
  spaces.replaceChildren(...answer.body.data.map((s) => new Option(`${s.name} (${s.id})`, s.id)));
  await loadTargets();
}

async function loadTargets() {
  const spaceId = $("space").value;
  const targets = $("target");
  targets.replaceChildren();
  if (!spaceId) return;
  try {
    const [agents, numbers, flows] = await Promise.all([
      listAll(`/v1/spaces/${spaceId}/agents`),
      listAll(`/v1/spaces/${spaceId}/phone-numbers`),
      listAll(`/v1/spaces/${spaceId}/flows`),
    ]);
    for (const a of agents) targets.add(new Option(`Agent: ${a.name}`, `agent:${a.id}`));
    for (const f of flows) targets.add(new Option(`Flow: ${f.name}`, `flow:${f.id}`));
    for (const n of numbers) targets.add(new Option(`Number: ${n.e164}${n.friendly_name ? " " + n.friendly_name : ""}`, `number:${n.id}`));
  } catch (error) {
    setStatus(`cannot list agents, flows and numbers: ${error.message}`);
  }
}

function signOut() {
  hangUpSocket();
  sessionStorage.removeItem(KEY_STORAGE);
  location.reload();
}

// ----------------------------------------------------------------------------- the call
function setStatus(text) {
  state.status = text;
  $("status").textContent = text;
}

function setInCall(inCall) {
  $("call").disabled = inCall;
  for (const id of ["hold", "transfer", "hangup"]) $(id).disabled = !inCall;
}

async function startCall() {
  const [kind, id] = $("target").value.split(":");
  const spaceId = $("space").value;
  if (!kind || !spaceId) return setStatus("pick a space and an agent, flow or number");
  state.transcript = [];
  state.turns = [];
  state.closed = null;
  $("transcript").replaceChildren();
  $("call-info").replaceChildren();
  setInCall(true);
  setStatus("starting microphone…");
  let context, stream;
  try {
    context = new AudioContext();
    await context.audioWorklet.addModule("/console/capture-worklet.js");
    await context.audioWorklet.addModule("/console/playback-worklet.js");
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (error) {
    setInCall(false);
    return setStatus(`no microphone: ${error.message}`);
  }
  const playback = new AudioWorkletNode(context, "playback", {
    numberOfInputs: 0, outputChannelCount: [1], processorOptions: { sourceRate: PROTOCOL.sampleRate },
  });
  playback.connect(context.destination);
  const capture = new AudioWorkletNode(context, "capture", {
    numberOfOutputs: 0,
    processorOptions: { targetRate: PROTOCOL.sampleRate, frameSamples: PROTOCOL.frameSamples },
  });
  const ws = new WebSocket(await socketUrl());
  ws.binaryType = "arraybuffer";
  call = { ws, context, stream, spaceId, callId: null };
  setStatus("calling…");

  ws.onopen = () => {
    const hello = { type: "hello", api_key: sessionStorage.getItem(KEY_STORAGE), space_id: spaceId };
    hello[{ agent: "agent_id", flow: "flow_id", number: "phone_number_id" }[kind]] = id;
    ws.send(JSON.stringify(hello));
  };
  ws.onmessage = (event) => {
    if (event.data instanceof ArrayBuffer) {
      playback.port.postMessage({ type: "audio", pcm: event.data }, [event.data]);
      return;
    }
    const message = JSON.parse(event.data);
    if (message.type === "ready") {
      call.callId = state.callId = message.call_id;
      state.workflowId = message.workflow_id;
      setStatus("in call");
      info({ call: message.call_id, workflow: message.workflow_id, conversation: message.conversation_id });
      context.createMediaStreamSource(stream).connect(capture);
    } else if (message.type === "segment_end") {
      playback.port.postMessage({ type: "mark", segment: message.segment });
    } else if (message.type === "clear") {
      playback.port.postMessage({ type: "clear" });
    } else if (message.type === "transcript") {
      transcript(message);
    } else if (message.type === "turn") {
      turn(message);
    } else if (message.type === "ended") {
      setStatus(`ended (${message.end_reason || message.state})`);
    }
  };
  ws.onclose = (event) => {
    state.closed = { code: event.code, reason: event.reason };
    const known = PROTOCOL.close[event.code] || `closed (${event.code})`;
    if (event.code !== 1000) setStatus(`${known}: ${event.reason || "no reason given"}`);
    else if (!state.status.startsWith("ended")) setStatus(event.reason || "call ended");
    teardown();
  };
  capture.port.onmessage = (event) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(event.data);
  };
  playback.port.onmessage = (event) => {
    const message = event.data;
    if (message.type === "played") {
      state.agentSegmentsPlayed += 1;
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "played", segment: message.segment }));
    } else if (message.type === "stats") {
      state.agentSamplesPlayed = message.samples;
    }
  };
}

function teardown() {
  if (!call) return;
  for (const track of call.stream.getTracks()) track.stop();
  call.context.close();
  call = null;
  setInCall(false);
}

function hangUpSocket() {
  if (call && call.ws.readyState === WebSocket.OPEN) call.ws.send(JSON.stringify({ type: "hangup" }));
}

// ----------------------------------------------------------------------------- transcript
function transcript(message) {
  const partial = $("partial");
  if (!message.final) {
    partial.textContent = message.text;
    return;
  }
  partial.textContent = "";
  state.transcript.push({ role: message.role, text: message.text });
  const item = document.createElement("li");
  item.className = message.role;
  item.textContent = message.text;
  $("transcript").append(item);
  item.scrollIntoView({ block: "nearest" });
}

function turn(message) {
  state.turns.push(message);
  // The turn ran from the end of the caller's last words to the agent's first sound: note it beside them.
  const callers = $("transcript").querySelectorAll("li.caller");
  const last = callers[callers.length - 1];
  if (!last || last.querySelector(".latency")) return;
  const parts = [["STT", message.stt_ms], ["LLM", message.llm_ttft_ms], ["TTS", message.tts_ttfb_ms]]
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([name, v]) => `${name} ${Math.round(v)}`)
    .join(" · ");
  const latency = document.createElement("span");
  latency.className = "latency";
  latency.textContent = `agent answered in ${Math.round(message.latency_ms)} ms${parts ? ` (${parts})` : ""}`;
  last.append(latency);
}

function info(fields) {
  const list = $("call-info");
  for (const [name, value] of Object.entries(fields)) {
    const term = document.createElement("dt");
    term.textContent = name;
    const description = document.createElement("dd");
    description.textContent = value || "—";
    list.append(term, description);
  }
}

// ----------------------------------------------------------------------------- controls
async function control(action, body) {
  if (!call || !call.callId) return;
  const answer = await api(`/v1/spaces/${call.spaceId}/calls/${call.callId}/${action}`, {
    method: "POST",
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = answer.ok
    ? `${action}: ${answer.status} — state ${answer.body.state}${answer.body.error ? ` (${answer.body.error})` : ""}`
    : `${action}: ${answer.status} — ${reason(answer)}`;
  state.apiAnswers.push({ action, status: answer.status, text });
  $("api-answer").textContent = text;
  return answer;
}

function sendDigit(digit) {
  if (call && call.ws.readyState === WebSocket.OPEN && call.callId) {
    call.ws.send(JSON.stringify({ type: "dtmf", digits: digit }));
  }
}

// ----------------------------------------------------------------------------- wiring
$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("api-key").value.trim());
});
$("sign-out").addEventListener("click", signOut);
$("space").addEventListener("change", loadTargets);
$("call").addEventListener("click", startCall);
$("hold").addEventListener("click", () => control("hold"));
$("transfer").addEventListener("click", () => control("transfer", { target: $("transfer-target").value, mode: "cold" }));
$("hangup").addEventListener("click", async () => {
  const answer = await control("hangup");
  if (answer && !answer.ok) hangUpSocket(); // the API could not end it: leave the call from this side
});
for (const key of document.querySelectorAll("#keypad button")) {
  key.addEventListener("click", () => sendDigit(key.dataset.digit));
}
const saved = sessionStorage.getItem(KEY_STORAGE);
if (saved) signIn(saved);

// The audio socket is served by the media servers: the API says where (null: this origin).
async function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const fallback = `${scheme}://${location.host}${PROTOCOL.path}`;
  try {
    const config = await (await fetch("/console/config.json")).json();
    return config.socket_url || fallback;
  } catch (error) {
    return fallback;
  }
}
