// Optional browser notifications: a project finished or failed while this tab was hidden.
// Permission is asked only when the person turns them on (a click), never on page load.

const KEY = "aytada.notify";

function supported() {
  return typeof window.Notification === "function";
}

function stored() {
  try {
    return localStorage.getItem(KEY) === "on";
  } catch {
    return false;
  }
}

function store(on) {
  try {
    if (on) localStorage.setItem(KEY, "on");
    else localStorage.removeItem(KEY);
  } catch {
    // storage refused: on for this page only
  }
}

/** Whether notifications are on: chosen here before, and still allowed by the browser. */
let enabled = supported() && stored() && Notification.permission === "granted";

export function notificationsOn() {
  return enabled;
}

/** Turn notifications on (asking for permission) or off; returns a sentence for the person. */
export async function toggleNotifications() {
  if (enabled) {
    enabled = false;
    store(false);
    return { on: false, message: "Notifications are off." };
  }
  if (!supported()) return { on: false, message: "This browser cannot show notifications." };
  let permission = Notification.permission;
  if (permission === "default") permission = await Notification.requestPermission();
  if (permission !== "granted") {
    return { on: false, message: "Notifications are blocked for this site in the browser's settings." };
  }
  enabled = true;
  store(true);
  return { on: true, message: "You will be notified when a project finishes while this tab is in the background." };
}

const ENDINGS = {
  completed: (title) => [`“${title}” is ready`, "Your ad finished rendering. Open it to preview and download."],
  failed: (title) => [`“${title}” failed`, "A step could not finish. Open the project to see why and retry."],
};

/** Notify that a project reached an end, when on and the tab is hidden. */
export function notifyEnded(card) {
  const ending = ENDINGS[card.status];
  if (!enabled || !ending || document.visibilityState !== "hidden") return;
  const [title, body] = ending(card.title);
  try {
    const note = new Notification(title, { body, tag: `aytada-${card.id}` });
    note.onclick = () => {
      window.focus();
      location.assign(`/studio/${encodeURIComponent(card.id)}`);
    };
  } catch {
    // a browser that only allows notifications from a service worker: nothing to show
  }
}
