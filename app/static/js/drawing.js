// A square canvas to draw one digit on with a mouse, pen or finger (pointer events; the canvas has
// touch-action: none so a finger draws instead of scrolling). White strokes on black, like MNIST.

const INK = "#fff";
const PAPER = "#000";

export class DrawingPad {
  constructor(canvas) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.last = null; // last point of the stroke in progress
    this.empty = true;
    canvas.addEventListener("pointerdown", (event) => this.start(event));
    canvas.addEventListener("pointermove", (event) => this.move(event));
    for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
      canvas.addEventListener(type, () => { this.last = null; });
    }
    this.clear();
  }

  clear() {
    this.context.fillStyle = PAPER;
    this.context.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.empty = true;
  }

  point(event) {
    const box = this.canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) / box.width) * this.canvas.width,
      y: ((event.clientY - box.top) / box.height) * this.canvas.height,
    };
  }

  start(event) {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.last = this.point(event);
    this.stroke(this.last, this.last);
  }

  move(event) {
    if (!this.last) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const each of events.length ? events : [event]) {
      const next = this.point(each);
      this.stroke(this.last, next);
      this.last = next;
    }
  }

  stroke(from, to) {
    const context = this.context;
    context.strokeStyle = INK;
    context.lineWidth = this.canvas.width / 12;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
    this.empty = false;
  }

  /**
   * Puts an image file on the pad, scaled to fit and centred on its own corner colour, so a dark
   * digit on white stays one (the server handles either polarity).
   */
  async loadImage(file) {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(this.canvas.width / bitmap.width, this.canvas.height / bitmap.height);
    const width = bitmap.width * scale;
    const height = bitmap.height * scale;
    this.context.drawImage(bitmap, 0, 0, 1, 1, 0, 0, 1, 1);
    const [red, green, blue] = this.context.getImageData(0, 0, 1, 1).data;
    this.context.fillStyle = `rgb(${red} ${green} ${blue})`;
    this.context.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.context.drawImage(bitmap, (this.canvas.width - width) / 2, (this.canvas.height - height) / 2, width, height);
    bitmap.close();
    this.empty = false;
  }

  toPngBlob() {
    return new Promise((resolve, reject) => {
      this.canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("The drawing could not be encoded as PNG."))), "image/png");
    });
  }
}
