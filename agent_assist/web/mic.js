// Browser microphone as a call source (docs/protocol.md): hello, call.start, then binary
// frames [version 1, channel 0, PCM16 little-endian...] every ~100 ms at the audio
// context's own rate (the server resamples), then call.end. Shows partials and finals.

const FRAME_MS = 100;

const $ = (id) => document.getElementById(id);
let session = null;

function wsUrl() {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}/ws`;
}

function send(ws, type, data, callId = null) {
  session.seq += 1;
  ws.send(JSON.stringify({ v: 1, type, call_id: callId, seq: session.seq, t_ms: 0, data }));
}

function toPcm16(samples) {
  const out = new DataView(new ArrayBuffer(2 + samples.length * 2));
  out.setUint8(0, 1); // frame version
  out.setUint8(1, 0); // channel 0
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    out.setInt16(2 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return out.buffer;
}

function status(text) {
  $("mic-status").textContent = text;
}

function onMessage(event) {
  let msg;
  try {
    msg = JSON.parse(event.data);
  } catch {
    return;
  }
  if (msg.type === "call.started") {
    session.callId = msg.call_id;
    status(`live: ${msg.call_id}`);
  } else if (msg.type === "transcript.partial") {
    $("mic-partial").textContent = msg.data.text;
  } else if (msg.type === "transcript.final") {
    $("mic-partial").textContent = "";
    const li = document.createElement("li");
    li.textContent = `${msg.data.speaker}: ${msg.data.text}`;
    $("mic-finals").append(li);
  } else if (msg.type === "error") {
    status(`error ${msg.data.code}: ${msg.data.message}`);
  } else if (msg.type === "call.ended") {
    status(`ended: ${msg.data.reason}`);
    session.ws.close();
  }
}

async function start() {
  $("mic-start").disabled = true;
  const media = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false },
  });
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule("./mic-worklet.js");
  const source = ctx.createMediaStreamSource(media);
  const node = new AudioWorkletNode(ctx, "capture");
  const ws = new WebSocket(wsUrl());
  ws.binaryType = "arraybuffer";
  session = { ws, ctx, media, node, seq: 0, callId: null, pending: [], pendingLen: 0 };
  const perFrame = Math.round((ctx.sampleRate * FRAME_MS) / 1000);
  ws.onmessage = onMessage;
  ws.onopen = () => {
    send(ws, "hello", { role: "source", subscribe: null });
    send(ws, "call.start", {
      language: $("mic-language").value,
      sample_rate: Math.round(ctx.sampleRate),
      channels: [$("mic-speaker").value],
      title: "browser microphone",
      mode: "audio",
    });
    status("connecting…");
  };
  node.port.onmessage = (e) => {
    if (!session || session.callId === null || ws.readyState !== WebSocket.OPEN) return;
    session.pending.push(e.data);
    session.pendingLen += e.data.length;
    if (session.pendingLen < perFrame) return;
    const all = new Float32Array(session.pendingLen);
    let at = 0;
    for (const part of session.pending) {
      all.set(part, at);
      at += part.length;
    }
    session.pending = [];
    session.pendingLen = 0;
    ws.send(toPcm16(all));
  };
  source.connect(node);
  $("mic-stop").disabled = false;
}

function stop() {
  if (!session) return;
  $("mic-stop").disabled = true;
  session.node.disconnect();
  session.media.getTracks().forEach((t) => t.stop());
  session.ctx.close();
  if (session.callId !== null && session.ws.readyState === WebSocket.OPEN) {
    send(session.ws, "call.end", { reason: "hangup" }, session.callId);
  }
  $("mic-start").disabled = false;
}

$("mic-start").addEventListener("click", () => {
  start().catch((err) => {
    status(`microphone unavailable: ${err.message}`);
    $("mic-start").disabled = false;
  });
});
$("mic-stop").addEventListener("click", stop);
