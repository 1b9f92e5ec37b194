// Submissions wait in localStorage until the server has answered them. Each keeps its
// idempotency key, so a retry after a lost response is a replay, never a second vote.

const STORAGE_KEY = "gz-outbox-v1";
const PERMANENT = new Set([400, 403, 404, 409]);
// A vote refused for want of a volunteer identity waits until the page has obtained one.
const NEEDS_IDENTITY = "volunteer_identity_required";
const MAX_BATCH = 50; // the server's limit per batch request

export class Outbox {
  // identify(): obtains a volunteer identity; resolves true once the server has issued one.
  constructor({ send, sendBatch = null, identify = async () => true, onSettled = () => {}, onChange = () => {}, storage = window.localStorage }) {
    this.send = send;
    this.identify = identify;
    this.sendBatch = sendBatch;
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

  // Several queued votes (e.g. after being offline) go in one batch request; the server
  // answers each as a single submit would, so each item settles exactly as it would alone.
  async _flush() {
    clearTimeout(this.timer);
    const settled = {};
    let pending = this.items();
    while (pending.length) {
      const chunk = pending.slice(0, this.sendBatch ? MAX_BATCH : 1);
      let results;
      try {
        results = chunk.length > 1 ? await this._sendBatch(chunk) : [await this.send(chunk[0].payload)];
      } catch (error) {
        chunk.forEach((item) => { this._bump(item.key); settled[item.key] = { offline: true }; });
        this._retryLater();
        break;
      }
      let retry = false;
      chunk.forEach((item, i) => {
        const result = results[i];
        const needsIdentity = result.status === 403 && result.body?.code === NEEDS_IDENTITY;
        if (!needsIdentity && ((result.status >= 200 && result.status < 300) || PERMANENT.has(result.status))) {
          this.remove(item.key);
          settled[item.key] = result;
          this.onSettled(item, result);
        } else {
          this._bump(item.key);
          settled[item.key] = { retrying: true, status: result.status };
          retry = true;
        }
      });
      if (retry) {
        if (results.some((r) => r.status === 403 && r.body?.code === NEEDS_IDENTITY)) await this.identify().catch(() => false);
        this._retryLater();
        break;
      }
      pending = pending.slice(chunk.length);
    }
    if (!this.items().length) this.delay = 2000;
    return settled;
  }

  // One result per item, shaped like a single submit's {status, body}. A refused batch (400)
  // is resent item by item, so one malformed vote cannot take the others down with it.
  async _sendBatch(chunk) {
    const response = await this.sendBatch(chunk.map((item) => item.payload));
    const results = response.body?.results;
    if (response.status === 200 && Array.isArray(results) && results.length === chunk.length) {
      return results.map((r) => ({ status: r.status, body: r.classification ?? r.error }));
    }
    if (response.status === 400) {
      const singles = [];
      for (const item of chunk) singles.push(await this.send(item.payload));
      return singles;
    }
    return chunk.map(() => ({ status: response.status, body: response.body }));
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
