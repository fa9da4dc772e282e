// Live My Videos feed: the WebSocket first; while it is down, polling every 8 s, and only while
// something is active. Never both at once.

import { writtenPosition } from "./api.js";

const POLL_MS = 8000;
const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const CONNECT_TIMEOUT_MS = 5000;
const FIRST_LOAD_MS = 3000;
const STABLE_MS = 10000;
// The server closes a socket with this code when its session or token stops working.
const CREDENTIALS_REVOKED = 4001;
// Dispatched on `document` after every change the feed applies ({detail: {position}}), so that
// what depends on the projects (the sidebar's balance) follows them without a socket of its own.
export const FEED_CHANGED = "aytada:feed";
const running = new Set();

/** Whether this page already runs a feed. */
export function feedRunning() {
  return running.size > 0;
}

function changed(position) {
  document.dispatchEvent(new CustomEvent(FEED_CHANGED, { detail: { position } }));
}

export class LiveFeed {
  /**
   * onSnapshot(videos), onUpdate(card), onRemoved(id): the changes, in order.
   * poll(): fetch the state over HTTP and apply it; may resolve to {position}.
   * isActive(): whether anything shown is still processing.
   * onState(state): "connecting" | "live" | "polling" | "offline".
   */
  constructor({ onSnapshot, onUpdate, onRemoved, poll, isActive, onState, path = "/ws/videos" }) {
    this.handlers = { onSnapshot, onUpdate, onRemoved, onState: onState || (() => {}) };
    this.poll = poll;
    this.isActive = isActive;
    this.path = path;
    this.position = null;
    this.socket = null;
    this.live = false;
    this.loaded = false;
    this.attempts = 0;
    this.reconnectTimer = null;
    this.pollTimer = null;
    this.polling = false;
    this.stopped = false;
    this.state = null;
    this.firstLoad = null;
  }

  start() {
    this.stopped = false;
    running.add(this);
    window.addEventListener("pagehide", () => this.stop(), { once: true });
    this.connect();
    // a socket that hangs must not leave the page empty: load the list once over HTTP
    this.firstLoad = setTimeout(() => {
      if (!this.loaded && !this.live) this.pollOnce();
    }, FIRST_LOAD_MS);
  }

  stop() {
    this.stopped = true;
    running.delete(this);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.firstLoad);
    this.stopPolling();
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000, "page closed");
    }
  }

  /** Call after anything shown changed: starts or stops the polling fallback. */
  refresh() {
    if (this.live || this.stopped || !this.isActive()) {
      this.stopPolling();
      this.setState(this.live ? "live" : this.socket ? "connecting" : "offline");
      return;
    }
    if (this.pollTimer === null) {
      this.pollTimer = setInterval(() => this.pollOnce(), POLL_MS);
    }
    this.setState("polling");
  }

  /** Apply a fetched state, unless the feed already saw something newer. */
  acceptPosition(position) {
    if (typeof position !== "number") return true;
    if (this.position !== null && position < this.position) return false;
    this.position = position;
    return true;
  }

  connect() {
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let query = this.position === null ? "" : `?after=${encodeURIComponent(this.position)}`;
    // positions from another epoch (before a live rebuild) get a new snapshot
    if (query && this.epoch) query += `&epoch=${encodeURIComponent(this.epoch)}`;
    let socket;
    try {
      socket = new WebSocket(`${scheme}://${location.host}${this.path}${query}`);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.setState("connecting");
    let openedAt = 0;
    let heard = false;
    const timeout = setTimeout(() => {
      if (socket.readyState === WebSocket.CONNECTING) socket.close();
    }, CONNECT_TIMEOUT_MS);

    socket.addEventListener("open", () => {
      clearTimeout(timeout);
      if (this.socket !== socket) return;
      openedAt = Date.now();
      this.live = true;
      this.refresh();
    });
    socket.addEventListener("message", (event) => {
      if (this.socket !== socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!heard) {
        heard = true;
        this.attempts = 0;
      }
      this.receive(message);
    });
    socket.addEventListener("close", (event) => {
      clearTimeout(timeout);
      if (this.socket !== socket) return;
      this.socket = null;
      this.live = false;
      if (event.code === CREDENTIALS_REVOKED) {
        // reconnecting would be refused: sign in again, then come back here
        this.stop();
        const next = location.pathname + location.search;
        location.assign(`/login?next=${encodeURIComponent(next)}`);
        return;
      }
      if (openedAt && Date.now() - openedAt > STABLE_MS) this.attempts = 0;
      if (this.stopped) return;
      if (!this.loaded) this.pollOnce(); // the socket never delivered: load the list once
      this.refresh();
      this.scheduleReconnect();
    });
  }

  receive(message) {
    if (message.type === "resync") {
      this.epoch = message.epoch; // the read models were rebuilt: a new snapshot follows
      return;
    }
    if (message.type === "snapshot") {
      if (message.epoch) this.epoch = message.epoch;
      this.position = message.position;
      this.loaded = true;
      if (message.position < writtenPosition()) {
        // older than this tab's own last change: read it over HTTP, which waits for that change
        this.pollAfterOwnWrite();
      } else {
        this.handlers.onSnapshot(message.videos || []);
      }
    } else if (message.type === "update" || message.type === "removed") {
      if (this.position !== null && message.position <= this.position) return; // seen already
      this.position = message.position;
      if (message.type === "update") this.handlers.onUpdate(message.video);
      else this.handlers.onRemoved(message.id);
    } else {
      return;
    }
    changed(message.position);
    this.refresh();
  }

  async pollAfterOwnWrite() {
    try {
      await this.poll();
    } catch (error) {
      console.warn("refresh failed", error);
    }
  }

  scheduleReconnect() {
    clearTimeout(this.reconnectTimer);
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempts);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.attempts += 1;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  async pollOnce() {
    if (this.polling || this.live) return;
    this.polling = true;
    try {
      await this.poll();
      this.loaded = true;
      changed(null);
    } catch (error) {
      console.warn("refresh failed", error);
    } finally {
      this.polling = false;
      this.refresh();
    }
  }

  stopPolling() {
    if (this.pollTimer !== null) {
      clearInterval(this.pollTimer);
      this.pollTimer = null;
    }
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.handlers.onState(state);
  }
}
