// Pictures the page draws itself: the latent code as bars, a grid of digits, the latent map.

export const INACTIVE_BELOW = 0.01; // a unit whose mu varies less than this over test digits is unused
// ten colours that stay apart for the common kinds of colour blindness (Okabe and Ito's eight, their
// black made white to show on the dark map, with a grey and a purple), one per label
export const LABEL_COLOURS = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#FFFFFF", "#999999", "#7A3E9D"];

export function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("an image the service returned could not be shown"));
    image.src = src;
  });
}

// mu +- sigma per dimension on a common axis, -4 to 4 or wider to hold every bar; inactive units in grey.
export function drawBars(canvas, mu, sigma, activity) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  const top = 10;
  const bottom = height - 24;
  const reach = Math.max(4, 2 * Math.ceil(Math.max(...mu.map((m, d) => Math.abs(m) + sigma[d])) / 2));
  const y = (v) => top + ((reach - Math.max(-reach, Math.min(reach, v))) / (2 * reach)) * (bottom - top);
  ctx.clearRect(0, 0, width, height);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  ctx.strokeStyle = "#ccc";
  ctx.fillStyle = "#555";
  ctx.font = "11px sans-serif";
  for (const v of [-reach, -reach / 2, 0, reach / 2, reach]) {
    ctx.beginPath();
    ctx.moveTo(28, y(v));
    ctx.lineTo(width, y(v));
    ctx.stroke();
    ctx.fillText(String(v), 4, y(v) + 4);
  }
  if (!mu.length) {
    ctx.fillStyle = "#5b6470";
    ctx.font = "14px sans-serif";
    ctx.fillText("Draw a digit to see its code here.", 40, height / 2 - 8);
    return;
  }
  const step = (width - 32) / mu.length;
  mu.forEach((m, d) => {
    const used = !activity || activity[d] >= INACTIVE_BELOW;
    const x = 32 + d * step + step / 2;
    const barWidth = Math.max(3, step * 0.5);
    ctx.fillStyle = used ? "#2563eb" : "#c4c4c4";
    const y1 = y(m + sigma[d]);
    ctx.fillRect(x - barWidth / 2, y1, barWidth, Math.max(2, y(m - sigma[d]) - y1));
    ctx.fillStyle = used ? "#0b2a6f" : "#8a8a8a";
    ctx.beginPath();
    ctx.arc(x, y(m), Math.min(4, Math.max(2, barWidth / 3)), 0, 2 * Math.PI);
    ctx.fill();
    if (mu.length <= 40 || d % 4 === 0) {
      ctx.fillStyle = "#555";
      ctx.fillText(String(d), x - 5, height - 8);
    }
  });
}

// n digits (PNG data URLs) as a square-ish grid at an integer scale.
export async function drawGrid(canvas, sources, scale = 2) {
  const images = await Promise.all(sources.map(loadImage));
  const columns = Math.ceil(Math.sqrt(images.length));
  const rows = Math.ceil(images.length / columns);
  const side = (images[0] ? images[0].width : 28) * scale;
  canvas.width = columns * side;
  canvas.height = rows * side;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  images.forEach((image, i) => ctx.drawImage(image, (i % columns) * side, Math.floor(i / columns) * side, side, side));
}

// The decoder's output on a grid over [-r, r]^2 (tiles row by row, top row at z1 = +r), with test
// digits' means over it and a marker at the chosen point.
export class LatentMap {
  constructor(canvas) {
    this.canvas = canvas;
    this.tiles = null;
    this.points = null;
    this.labels = null;
    this.marker = null;
    this.radius = 3;
    this.showPoints = true;
  }

  toLatent(x, y) {
    const { width, height } = this.canvas;
    return [(x / width) * 2 * this.radius - this.radius, this.radius - (y / height) * 2 * this.radius];
  }

  toCanvas([z0, z1]) {
    const { width, height } = this.canvas;
    return [((z0 + this.radius) / (2 * this.radius)) * width, ((this.radius - z1) / (2 * this.radius)) * height];
  }

  // centres of a side x side grid of tiles, row by row from the top
  grid(side) {
    const centres = [];
    for (let row = 0; row < side; row++) {
      for (let col = 0; col < side; col++) {
        centres.push(this.toLatent(((col + 0.5) * this.canvas.width) / side, ((row + 0.5) * this.canvas.height) / side));
      }
    }
    return centres;
  }

  async setTiles(sources, side) {
    this.tiles = { images: await Promise.all(sources.map(loadImage)), side };
    this.draw();
  }

  draw() {
    const ctx = this.canvas.getContext("2d");
    const { width, height } = this.canvas;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, width, height);
    if (this.tiles) {
      const size = width / this.tiles.side;
      ctx.imageSmoothingEnabled = true;
      this.tiles.images.forEach((image, i) => {
        ctx.drawImage(image, (i % this.tiles.side) * size, Math.floor(i / this.tiles.side) * size, size, size);
      });
    }
    if (this.showPoints && this.points) {
      ctx.globalAlpha = 0.75;
      this.points.forEach((p, i) => {
        const [x, y] = this.toCanvas(p);
        ctx.fillStyle = LABEL_COLOURS[((this.labels[i] % 10) + 10) % 10];
        ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
      });
      ctx.globalAlpha = 1;
    }
    if (this.marker) {
      const [x, y] = this.toCanvas(this.marker);
      ctx.strokeStyle = "#ff2d55";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(x, y, 9, 0, 2 * Math.PI);
      ctx.moveTo(x - 14, y);
      ctx.lineTo(x + 14, y);
      ctx.moveTo(x, y - 14);
      ctx.lineTo(x, y + 14);
      ctx.stroke();
    }
  }
}
