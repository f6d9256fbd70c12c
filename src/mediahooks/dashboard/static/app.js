// The dashboard's only script: live regions fed by server-sent events, and the timeline picker.
// Every form works without it; it only spares reloads.
"use strict";

// A region marked data-live="topic ..." is fetched again (the same URL, the same element id)
// when a message of one of its topics arrives, and swapped in place.
const topicsOf = {
  asset: (d) => ["assets", "asset:" + d.id],
  stream: () => ["streams"],
  delivery: (d) => ["deliveries", "webhook:" + d.webhook, "delivery:" + d.delivery],
};

const pending = new Map(); // region id -> whether another refresh is owed

async function refresh(region) {
  if (pending.has(region.id)) { pending.set(region.id, true); return; }
  pending.set(region.id, false);
  try {
    const response = await fetch(location.href, { headers: { Accept: "text/html" } });
    if (response.ok) {
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById(region.id);
      const current = document.getElementById(region.id);
      if (fresh && current && fresh.innerHTML !== current.innerHTML) {
        current.innerHTML = fresh.innerHTML;
        setUp(current);
        current.dispatchEvent(new CustomEvent("live:updated", { bubbles: true }));
      }
    }
  } finally {
    const again = pending.get(region.id);
    pending.delete(region.id);
    if (again) refresh(region);
  }
}

function listen() {
  const regions = [...document.querySelectorAll("[data-live]")];
  if (!regions.length || !window.EventSource) return;
  // From where this page's data was read: nothing that happened since is missed.
  const source = new EventSource("/live?from=" + encodeURIComponent(document.body.dataset.liveFrom));
  for (const [name, topics] of Object.entries(topicsOf)) {
    source.addEventListener(name, (message) => {
      const wanted = topics(JSON.parse(message.data));
      for (const region of regions) {
        const mine = region.dataset.live.split(" ");
        if (mine.some((t) => wanted.includes(t))) refresh(region);
      }
    });
  }
  source.addEventListener("open", () => document.body.classList.add("live-connected"));
}

// Timeline picker: show the picked range as times and as a band on the broadcast's bar.
function pad(n) { return String(n).padStart(2, "0"); }
function clock(ms) {
  const t = new Date(ms);
  return `${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}:${pad(t.getUTCSeconds())} UTC`;
}

function setUpPicker(form) {
  const from = form.querySelector("input[name=from]");
  const to = form.querySelector("input[name=to]");
  const output = form.querySelector("output.picked");
  const card = form.closest(".stream");
  const bar = card && card.querySelector(".timeline");
  const band = bar && bar.querySelector(".selection");
  const origin = Number(form.dataset.origin);
  const update = () => {
    if (Number(from.value) > Number(to.value)) [from.value, to.value] = [to.value, from.value];
    const a = origin + from.value * 1000, b = origin + to.value * 1000;
    output.textContent = `${clock(a)} → ${clock(b)} (${(b - a) / 1000} s)`;
    if (band) {
      const start = Number(bar.dataset.start), span = Number(bar.dataset.end) - start;
      band.style.left = `${((a - start) * 100) / span}%`;
      band.style.width = `${((b - a) * 100) / span}%`;
      band.hidden = false;
    }
  };
  from.addEventListener("input", update);
  to.addEventListener("input", update);
  update();
}

function setUp(root) {
  // Positions come as data attributes: the page's policy allows no inline style.
  for (const el of root.querySelectorAll("[data-left]")) {
    el.style.left = el.dataset.left + "%";
    el.style.width = el.dataset.width + "%";
  }
  for (const form of root.querySelectorAll("form.clip-form")) setUpPicker(form);
}

setUp(document);
listen();
