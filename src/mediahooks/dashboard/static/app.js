// The dashboard's script: live regions fed by server-sent events, the timeline picker, and
// HLS players (hls.js, shipped beside this file). Every form works without it; it only spares
// reloads, and plays.
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
        for (const video of current.querySelectorAll("video")) detach(video);
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

// HLS players: hls.js where the browser has Media Source Extensions, else the browser's own
// HLS (Safari), else nothing to do.
function attach(video, url) {
  detach(video);
  if (window.Hls && window.Hls.isSupported()) {
    const hls = new window.Hls({ enableWorker: true });
    hls.loadSource(url);
    hls.attachMedia(video);
    video.hls = hls;
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
  }
}

function detach(video) {
  if (video.hls) { video.hls.destroy(); video.hls = null; }
}

function setUpPreview(form) {
  const button = form.querySelector("button.preview-range");
  const video = form.querySelector("video.preview");
  if (!button || !video || !form.dataset.play) return;
  button.hidden = false;
  button.addEventListener("click", () => {
    const origin = Number(form.dataset.origin);
    const from = form.querySelector("input[name=from]").value;
    const to = form.querySelector("input[name=to]").value;
    const query = new URLSearchParams({
      start: String(origin + from * 1000),
      stop: String(origin + to * 1000),
      broadcast: form.dataset.broadcast,
    });
    video.hidden = false;
    attach(video, `${form.dataset.play}?${query}&${form.dataset.grant}`);
    video.play().catch(() => {}); // a muted preview may start; if not, its controls can
  });
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
  for (const form of root.querySelectorAll("form.clip-form")) {
    setUpPicker(form);
    setUpPreview(form);
  }
  for (const video of root.querySelectorAll("video[data-hls]")) attach(video, video.dataset.hls);
}

setUp(document);
listen();
