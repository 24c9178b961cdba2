import { h } from './dom.js';

/** One line of a chart. */
export interface Series {
  label: string;
  colour: string;
}

/** Points kept per line: half a minute at one sample a second. */
const POINTS = 30;

/**
 * A small live line chart on a canvas: `push` one value per series, the newest at the
 * right; the scale follows the largest value shown (or `max` when given).
 */
export class LiveChart {
  readonly element: HTMLElement;
  private readonly canvas = h('canvas', { width: 360, height: 120 });
  private readonly legend = h('div', { class: 'legend' });
  private readonly scale = h('span', { class: 'scale' });
  private readonly values: number[][];

  constructor(
    title: string,
    private readonly series: Series[],
    private readonly format: (v: number) => string,
    private readonly max?: () => number,
  ) {
    this.values = series.map(() => []);
    this.element = h('figure', { class: 'chart' }, h('figcaption', {}, title, this.scale), this.canvas, this.legend);
    this.draw();
  }

  /** Add one sample (one value per series, in order). */
  push(sample: number[]): void {
    sample.forEach((v, i) => {
      const line = this.values[i]!;
      line.push(v);
      if (line.length > POINTS) line.shift();
    });
    this.element.dataset.points = String(this.values[0]?.length ?? 0);
    this.draw();
  }

  private draw(): void {
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    const { width, height } = this.canvas;
    ctx.clearRect(0, 0, width, height);
    ctx.strokeStyle = '#e3e7ee';
    ctx.lineWidth = 1;
    for (let i = 1; i < 4; i++) {
      const y = Math.round((height * i) / 4) + 0.5;
      ctx.beginPath();
      ctx.moveTo(0, y);
      ctx.lineTo(width, y);
      ctx.stroke();
    }
    const top = Math.max(this.max?.() ?? 0, ...this.values.flat(), 1e-9);
    this.scale.textContent = `top: ${this.format(top < 1e-6 ? 0 : top)}`;
    this.values.forEach((line, i) => {
      ctx.strokeStyle = this.series[i]!.colour;
      ctx.lineWidth = 2;
      ctx.beginPath();
      line.forEach((v, j) => {
        const x = width - (line.length - 1 - j) * (width / (POINTS - 1));
        const y = height - 2 - (v / top) * (height - 4);
        if (j === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      });
      ctx.stroke();
    });
    this.legend.replaceChildren(
      ...this.series.map((s, i) => {
        const last = this.values[i]!.at(-1);
        return h('span', {}, h('i', { style: `background:${s.colour}` }), `${s.label}: ${last === undefined ? '–' : this.format(last)}`);
      }),
    );
  }
}
