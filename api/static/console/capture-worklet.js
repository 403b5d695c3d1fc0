// Microphone -> 16-bit PCM frames at the protocol's rate (models/console_protocol.py: SAMPLE_RATE, FRAME_SAMPLES).
// The AudioContext runs at the device rate (44.1 or 48 kHz); each output sample is the mean of the input
// samples in its window (a box filter: crude, but it keeps speech clear for the recogniser).
class Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate, frameSamples } = options.processorOptions;
    this.ratio = sampleRate / targetRate;
    this.frameSamples = frameSamples;
    this.position = 0;
    this.sum = 0;
    this.count = 0;
    this.frame = new Int16Array(frameSamples);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      this.sum += channel[i];
      this.count += 1;
      this.position += 1;
      if (this.position < this.ratio) continue;
      this.position -= this.ratio;
      const value = Math.max(-1, Math.min(1, this.sum / this.count));
      this.sum = 0;
      this.count = 0;
      this.frame[this.filled++] = value < 0 ? value * 0x8000 : value * 0x7fff;
      if (this.filled === this.frameSamples) {
        this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
        this.frame = new Int16Array(this.frameSamples);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("capture", Capture);
