// Agent speech (16-bit PCM at the protocol's rate) -> the speakers, upsampled to the context's rate by linear
// interpolation. Messages in: {type: "audio", pcm: ArrayBuffer}, {type: "mark", segment}, {type: "clear"}.
// Out: {type: "played", segment} once every sample queued before the mark has been played, and
// {type: "stats", samples} (agent samples played so far, at the protocol's rate).
class Playback extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.step = options.processorOptions.sourceRate / sampleRate;
    this.queue = [];
    this.phase = 0;
    this.previous = 0;
    this.played = 0;
    this.reported = 0;
    this.port.onmessage = (event) => this.receive(event.data);
  }

  receive(message) {
    if (message.type === "audio") {
      this.queue.push({ samples: this.resample(new Int16Array(message.pcm)), offset: 0 });
    } else if (message.type === "mark") {
      this.queue.push({ mark: message.segment });
    } else if (message.type === "clear") {
      this.queue = [];
      this.phase = 0;
      this.previous = 0;
    }
  }

  resample(source) {
    const out = [];
    let t = this.phase;
    const last = source.length - 1;
    while (t < last) {
      const i = Math.floor(t);
      const f = t - i;
      const a = i < 0 ? this.previous : source[i] / 0x8000;
      const b = source[i + 1] / 0x8000;
      out.push(a + (b - a) * f);
      t += this.step;
    }
    this.phase = t - source.length;
    this.previous = source.length ? source[last] / 0x8000 : this.previous;
    return Float32Array.from(out);
  }

  process(_inputs, outputs) {
    const output = outputs[0][0];
    let written = 0;
    while (written < output.length && this.queue.length) {
      const head = this.queue[0];
      if (head.mark !== undefined) {
        this.port.postMessage({ type: "played", segment: head.mark });
        this.queue.shift();
        continue;
      }
      const n = Math.min(output.length - written, head.samples.length - head.offset);
      output.set(head.samples.subarray(head.offset, head.offset + n), written);
      head.offset += n;
      written += n;
      this.played += n * this.step;
      if (head.offset === head.samples.length) this.queue.shift();
    }
    output.fill(0, written);
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(output);
    if (this.played - this.reported >= 1600) {
      this.reported = this.played;
      this.port.postMessage({ type: "stats", samples: Math.round(this.played) });
    }
    return true;
  }
}

registerProcessor("playback", Playback);
