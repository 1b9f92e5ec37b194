// Submissions wait in localStorage until the server has answered them. Each keeps its
// idempotency key, so a retry after a lost response is a replay, never a second vote.

const STORAGE_KEY = "gz-outbox-v1";
const PERMANENT = new Set([400, 403, 404, 409]);

export class Outbox {
  constructor({ send, onSettled = () => {}, onChange = () => {}, storage = window.localStorage }) {
    this.send = send;
    this.onSettled = onSettled;
    this.onChange = onChange;
    this.storage = storage;
    this.flushing = null;
    this.timer = null;
    this.delay = 2000;
    window.addEventListener("online", () => this.flush());
  }

  items() {
    try { return JSON.parse(this.storage.getItem(STORAGE_KEY) || "[]"); } catch { return []; }
  }

  save(items) {
    this.storage.setItem(STORAGE_KEY, JSON.stringify(items));
    this.onChange(items);
  }

  add(item) {
    this.save([...this.items().filter((i) => i.key !== item.key), { ...item, queuedAt: Date.now(), attempts: 0 }]);
  }

  remove(key) { this.save(this.items().filter((i) => i.key !== key)); }

  // One flush at a time; resolves with {key: outcome} for the items it settled.
  flush() {
    if (!this.flushing) this.flushing = this._flush().finally(() => { this.flushing = null; });
    return this.flushing;
  }

  async _flush() {
    clearTimeout(this.timer);
    const settled = {};
    for (const item of this.items()) {
      let result;
      try {
        result = await this.send(item.payload);
      } catch (error) {
        this._bump(item.key);
        this._retryLater();
        settled[item.key] = { offline: true };
        break;
      }
      if ((result.status >= 200 && result.status < 300) || PERMANENT.has(result.status)) {
        this.remove(item.key);
        settled[item.key] = result;
        this.onSettled(item, result);
      } else {
        this._bump(item.key);
        this._retryLater();
        settled[item.key] = { retrying: true, status: result.status };
        break;
      }
    }
    if (!this.items().length) this.delay = 2000;
    return settled;
  }

  _bump(key) {
    this.save(this.items().map((i) => (i.key === key ? { ...i, attempts: (i.attempts || 0) + 1 } : i)));
  }

  _retryLater() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), this.delay);
    this.delay = Math.min(this.delay * 2, 60000);
  }
}
