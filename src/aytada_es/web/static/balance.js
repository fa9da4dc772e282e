// The sidebar's credit balance, on every page: read at load, after each command, and after
// each change of the user's projects (a step reserves, is charged, releases). Those changes
// come over the page's own live feed; a page without one gets a feed for the balance alone,
// which polls every 8 s while its WebSocket is down.

import { COMMAND_DONE, api } from "./api.js";
import { FEED_CHANGED, LiveFeed, feedRunning } from "./live.js";

const shown = document.getElementById("balance");

let reading = false;
let again = false;
let wanted = 0; // the highest feed position the balance must include

function show(statement) {
  const balance = Number(statement.balance);
  if (!Number.isSafeInteger(balance)) return;
  const reserved = Number(statement.reserved) || 0;
  shown.dataset.balance = String(balance);
  shown.querySelector("[data-balance-value]").textContent = balance.toLocaleString();
  shown.querySelector("[data-balance-reserved]").textContent = reserved
    ? `${reserved.toLocaleString()} held for steps in progress`
    : "";
  shown.dataset.reserved = String(reserved);
}

/** Read the balance again (coalesced: one read at a time, one more if asked meanwhile). */
export async function refreshBalance(position = null) {
  if (typeof position === "number" && position > wanted) wanted = position;
  if (reading) {
    again = true;
    return;
  }
  reading = true;
  try {
    do {
      again = false;
      // the credits read model may lag the card that told of a charge: wait until it has it
      const query = wanted > 0 ? `?min_position=${encodeURIComponent(wanted)}` : "";
      try {
        show(await api(`/api/credits${query}`));
      } catch (error) {
        console.warn("balance not read", error);
      }
    } while (again);
  } finally {
    reading = false;
  }
}

if (shown) {
  document.addEventListener(FEED_CHANGED, (event) => refreshBalance(event.detail && event.detail.position));
  document.addEventListener(COMMAND_DONE, () => refreshBalance());
  refreshBalance();
  // credits granted or adjusted by support change no project: read again when the tab returns
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refreshBalance();
  });
  // Module scripts run in order: the page's own script has started its feed, if it has one.
  if (!feedRunning()) {
    new LiveFeed({
      onSnapshot() {},
      onUpdate() {},
      onRemoved() {},
      poll: async () => {}, // each poll announces itself (FEED_CHANGED): the balance reads then
      isActive: () => true,
    }).start();
  }
}
