// The drawing pad: dark ink on white paper, as people draw, with mouse, touch or pen (pointer
// events); or an image file dropped on it. It hands the picture on as a PNG blob when a stroke ends.

const INK = "#111";

export class Pad {
  constructor(canvas, onPicture) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.onPicture = onPicture;
    this.last = null;
    this.clear();
    canvas.addEventListener("pointerdown", (e) => this.#down(e));
    canvas.addEventListener("pointermove", (e) => this.#move(e));
    for (const name of ["pointerup", "pointercancel"]) canvas.addEventListener(name, (e) => this.#up(e));
    canvas.addEventListener("dragover", (e) => e.preventDefault());
    canvas.addEventListener("drop", (e) => {
      e.preventDefault();
      const file = e.dataTransfer && e.dataTransfer.files[0];
      if (file) this.showFile(file);
    });
  }

  clear() {
    const { context, canvas } = this;
    context.fillStyle = "#fff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    this.empty = true;
  }

  // A picked or dropped file is shown on the pad and sent as it is: the service normalizes it.
  async showFile(file) {
    this.clear();
    try {
      const bitmap = await createImageBitmap(file);
      const scale = Math.min(this.canvas.width / bitmap.width, this.canvas.height / bitmap.height);
      const w = bitmap.width * scale;
      const h = bitmap.height * scale;
      this.context.drawImage(bitmap, (this.canvas.width - w) / 2, (this.canvas.height - h) / 2, w, h);
    } catch {
      // not an image the browser can show; the service will say what it makes of it
    }
    this.empty = false;
    this.onPicture(file, file.name || "upload");
  }

  #point(e) {
    const box = this.canvas.getBoundingClientRect();
    return [((e.clientX - box.left) * this.canvas.width) / box.width, ((e.clientY - box.top) * this.canvas.height) / box.height];
  }

  #down(e) {
    e.preventDefault();
    this.canvas.setPointerCapture(e.pointerId);
    this.last = this.#point(e);
    this.#stroke(this.last, this.last, e.pressure);
  }

  #move(e) {
    if (!this.last) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const each of events.length ? events : [e]) {
      const next = this.#point(each);
      this.#stroke(this.last, next, each.pressure);
      this.last = next;
    }
  }

  #up() {
    if (!this.last) return;
    this.last = null;
    this.empty = false;
    this.canvas.toBlob((blob) => blob && this.onPicture(blob, "drawing.png"), "image/png");
  }

  #stroke(from, to, pressure) {
    const { context } = this;
    // a pen's pressure varies the width a little; a mouse reports 0.5 while a button is down
    context.lineWidth = 18 * (0.75 + 0.5 * (pressure || 0.5));
    context.lineCap = "round";
    context.lineJoin = "round";
    context.strokeStyle = INK;
    context.beginPath();
    context.moveTo(...from);
    context.lineTo(...to);
    context.stroke();
  }
}
