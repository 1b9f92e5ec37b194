// The galaxies waiting to be shown: prefetched from the queue API (images preloaded), minus
// those already classified in this browser or waiting in the outbox. Each galaxy's detail
// (status, tallies, model prediction) is fetched once and shared by the still-open check and
// the feedback.

import { getJSON } from "./api.js";
import { withId } from "./urls.js";

const QUEUE_TARGET = 6;
const REFILL_BELOW = 3;
const SEEN_KEY = "gz-seen-v1";
const SEEN_MAX = 2000;

function preload(url) {
  const img = new Image();
  img.decoding = "async";
  img.src = url;
  return img.decode().then(() => img, () => img);
}

export class GalaxyQueue {
  // pendingIds(): galaxy ids in the outbox; onChange(n): called with the queue length.
  constructor({ nextUrl, galaxyUrl, workflow, user, pendingIds, onChange }) {
    this.nextUrl = nextUrl;
    this.galaxyUrl = galaxyUrl;
    this.workflow = workflow;
    this.seenKey = `${SEEN_KEY}:${user}`;
    this.pendingIds = pendingIds;
    this.onChange = onChange;
    this.items = [];
    this.fetching = null;
    this.exhausted = false; // the server had nothing more at the last fetch
    this.inactive = false; // the workflow was paused
    this.fetchError = null;
  }

  // Top up in the background when running low; `current` (on screen) is not fetched again.
  refill(current = null) {
    if (this.fetching) return this.fetching;
    if (this.items.length >= REFILL_BELOW || this.exhausted) return null;
    const exclude = new Set([...this.items.map((i) => i.galaxy.id), ...this.pendingIds()]);
    if (current) exclude.add(current.galaxy.id);
    const url = `${this.nextUrl}?limit=${QUEUE_TARGET - this.items.length}&exclude=${[...exclude].join(",")}`;
    this.fetching = (async () => {
      try {
        const data = await getJSON(url);
        if (!data.workflow_active) this.inactive = true;
        const seen = this.seenMap();
        if (!data.results.length) this.exhausted = true;
        for (const result of data.results) {
          if (!exclude.has(result.galaxy.id) && !seen[result.galaxy.id]) {
            this.items.push({ ...result, ready: preload(result.galaxy.image_url), detail: null });
          }
        }
        this.onChange(this.items.length);
      } catch (error) {
        this.fetchError = error;
      } finally {
        this.fetching = null;
      }
    })();
    return this.fetching;
  }

  // The next galaxy, fetching when empty; null when the server has none, and throws when it
  // cannot be reached.
  async take() {
    while (!this.items.length) {
      this.fetchError = null;
      this.exhausted = false;
      await this.refill();
      if (this.items.length) break;
      if (this.fetchError) throw this.fetchError;
      return null;
    }
    return this.items.shift();
  }

  detail(item) {
    // A failed fetch is forgotten, so the feedback can try again once back online.
    item.detail ??= getJSON(`${withId(this.galaxyUrl, item.galaxy.id_str)}?workflow=${encodeURIComponent(this.workflow)}`)
      .catch((error) => { item.detail = null; throw error; });
    return item.detail;
  }

  seenMap() {
    try { return JSON.parse(localStorage.getItem(this.seenKey) || "{}"); } catch { return {}; }
  }

  isSeen(item) { return Boolean(this.seenMap()[item.galaxy.id]); }

  markSeen(item) {
    const seen = this.seenMap();
    seen[item.galaxy.id] = Date.now();
    const ids = Object.keys(seen);
    if (ids.length > SEEN_MAX) ids.sort((a, b) => seen[a] - seen[b]).slice(0, ids.length - SEEN_MAX).forEach((id) => delete seen[id]);
    localStorage.setItem(this.seenKey, JSON.stringify(seen));
  }
}
