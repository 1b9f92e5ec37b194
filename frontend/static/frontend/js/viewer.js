// Image viewer: CSS transforms (pan, zoom, rotate) and CSS filters (invert, brightness,
// contrast) on one <img>, driven by mouse, touch (pinch), toolbar buttons and keys.

const MIN_SCALE = 1;
const MAX_SCALE = 8;
const STEP = 1.25;

export class Viewer {
  constructor({ stage, image, toolbar, adjust, brightness, contrast }) {
    Object.assign(this, { stage, image, toolbar, adjust, brightnessInput: brightness, contrastInput: contrast });
    this.pointers = new Map();
    this.reset();
    this._bindPointer();
    this._bindToolbar();
  }

  reset() {
    this.state = { scale: 1, rotation: 0, tx: 0, ty: 0, invert: false, brightness: 1, contrast: 1 };
    this.render();
  }

  render() {
    const { scale, rotation, tx, ty, invert, brightness, contrast } = this.state;
    this.image.style.transform = `translate(${tx}px, ${ty}px) rotate(${rotation}deg) scale(${scale})`;
    this.image.style.filter = `${invert ? "invert(1) " : ""}brightness(${brightness}) contrast(${contrast})`;
    this.stage.dataset.zoom = scale.toFixed(2);
    this.stage.dataset.rotation = String(rotation);
    this.stage.dataset.invert = String(invert);
    if (this.brightnessInput) this.brightnessInput.value = brightness;
    if (this.contrastInput) this.contrastInput.value = contrast;
    const invertButton = this.toolbar?.querySelector('[data-action="invert"]');
    if (invertButton) invertButton.setAttribute("aria-pressed", String(invert));
  }

  // Zoom by `factor` keeping the point (px, py), relative to the stage centre, fixed.
  zoom(factor, px = 0, py = 0) {
    const s = this.state;
    const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, s.scale * factor));
    const k = scale / s.scale;
    s.tx = px - (px - s.tx) * k;
    s.ty = py - (py - s.ty) * k;
    s.scale = scale;
    this._clampPan();
    this.render();
  }

  pan(dx, dy) {
    this.state.tx += dx;
    this.state.ty += dy;
    this._clampPan();
    this.render();
  }

  rotate(degrees = 90) {
    this.state.rotation = (((this.state.rotation + degrees) % 360) + 360) % 360;
    this.render();
  }

  toggleInvert() { this.state.invert = !this.state.invert; this.render(); }

  adjustLevel(name, delta) {
    this.state[name] = Math.round(Math.min(3, Math.max(0.4, this.state[name] + delta)) * 100) / 100;
    this.render();
  }

  // Keep some of the image inside the stage whatever the zoom.
  _clampPan() {
    const s = this.state;
    const limitX = (this.stage.clientWidth * s.scale) / 2;
    const limitY = (this.stage.clientHeight * s.scale) / 2;
    s.tx = Math.max(-limitX, Math.min(limitX, s.tx));
    s.ty = Math.max(-limitY, Math.min(limitY, s.ty));
    if (s.scale === 1 && Math.abs(s.tx) < 1 && Math.abs(s.ty) < 1) { s.tx = 0; s.ty = 0; }
  }

  _local(event) {
    const rect = this.stage.getBoundingClientRect();
    return [event.clientX - rect.left - rect.width / 2, event.clientY - rect.top - rect.height / 2];
  }

  _bindPointer() {
    const stage = this.stage;
    stage.addEventListener("wheel", (event) => {
      event.preventDefault();
      const [px, py] = this._local(event);
      this.zoom(Math.exp(-event.deltaY * 0.0015), px, py);
    }, { passive: false });
    stage.addEventListener("pointerdown", (event) => {
      stage.setPointerCapture(event.pointerId);
      this.pointers.set(event.pointerId, this._local(event));
      stage.classList.add("dragging");
    });
    stage.addEventListener("pointermove", (event) => {
      if (!this.pointers.has(event.pointerId)) return;
      const previous = [...this.pointers.values()];
      const before = this.pointers.get(event.pointerId);
      const now = this._local(event);
      this.pointers.set(event.pointerId, now);
      if (this.pointers.size === 1) {
        this.pan(now[0] - before[0], now[1] - before[1]);
      } else if (this.pointers.size === 2) {
        const current = [...this.pointers.values()];
        const spread = (pts) => Math.hypot(pts[0][0] - pts[1][0], pts[0][1] - pts[1][1]) || 1;
        const mid = (pts) => [(pts[0][0] + pts[1][0]) / 2, (pts[0][1] + pts[1][1]) / 2];
        const [mx, my] = mid(current);
        const [ox, oy] = mid(previous);
        this.zoom(spread(current) / spread(previous), mx, my);
        this.pan(mx - ox, my - oy);
      }
    });
    const release = (event) => {
      this.pointers.delete(event.pointerId);
      if (!this.pointers.size) stage.classList.remove("dragging");
    };
    stage.addEventListener("pointerup", release);
    stage.addEventListener("pointercancel", release);
    stage.addEventListener("dblclick", (event) => {
      const [px, py] = this._local(event);
      this.zoom(event.shiftKey ? 1 / 2 : 2, px, py);
    });
  }

  _bindToolbar() {
    this.toolbar?.addEventListener("click", (event) => {
      const button = event.target.closest("[data-action]");
      if (!button) return;
      const actions = {
        "zoom-in": () => this.zoom(STEP),
        "zoom-out": () => this.zoom(1 / STEP),
        rotate: () => this.rotate(90),
        invert: () => this.toggleInvert(),
        reset: () => this.reset(),
        adjust: () => this.toggleAdjust(),
      };
      actions[button.dataset.action]?.();
    });
    this.brightnessInput?.addEventListener("input", () => { this.state.brightness = Number(this.brightnessInput.value); this.render(); });
    this.contrastInput?.addEventListener("input", () => { this.state.contrast = Number(this.contrastInput.value); this.render(); });
  }

  toggleAdjust(force) {
    if (!this.adjust) return;
    const open = force ?? this.adjust.hidden;
    this.adjust.hidden = !open;
    this.toolbar.querySelector('[data-action="adjust"]')?.setAttribute("aria-expanded", String(open));
  }

  // Keys for the viewer; returns true when the key was used.
  handleKey(event) {
    const pan = 40;
    const key = event.key;
    const map = {
      "+": () => this.zoom(STEP), "=": () => this.zoom(STEP), "-": () => this.zoom(1 / STEP), "_": () => this.zoom(1 / STEP),
      r: () => this.rotate(90), R: () => this.rotate(-90),
      i: () => this.toggleInvert(), I: () => this.toggleInvert(),
      b: () => { this.adjustLevel("brightness", 0.1); this.toggleAdjust(true); },
      B: () => { this.adjustLevel("brightness", -0.1); this.toggleAdjust(true); },
      c: () => { this.adjustLevel("contrast", 0.1); this.toggleAdjust(true); },
      C: () => { this.adjustLevel("contrast", -0.1); this.toggleAdjust(true); },
      0: () => this.reset(),
      ArrowLeft: () => this.pan(-pan, 0), ArrowRight: () => this.pan(pan, 0),
      ArrowUp: () => this.pan(0, -pan), ArrowDown: () => this.pan(0, pan),
    };
    if (!map[key]) return false;
    map[key]();
    return true;
  }
}
