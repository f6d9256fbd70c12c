// "Go live from this browser" on the streams page: publishes the camera (or a test pattern)
// through the server's WHIP endpoint with the chosen publish token (see whip.js).
(function () {
  "use strict";

  function setUp(form) {
    const status = form.querySelector(".golive-status");
    const start = form.querySelector(".golive-start");
    const stop = form.querySelector(".golive-stop");
    let live = null;

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const stream = form.elements.stream.value.trim();
      const token = form.elements.token.value;
      start.disabled = true;
      status.textContent = "Starting…";
      try {
        const media =
          form.elements.source.value === "pattern"
            ? window.mediahooksWhip.testPattern()
            : await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
        const endpoint = new URL(form.dataset.endpoint + encodeURIComponent(stream), location.href);
        live = await window.mediahooksWhip.publish(endpoint.href, token, media);
        live.media = media;
        status.textContent = "Live as " + stream + ".";
        stop.hidden = false;
      } catch (error) {
        status.textContent = "Could not go live: " + error.message;
        start.disabled = false;
      }
    });

    stop.addEventListener("click", async () => {
      if (live === null) return;
      live.media.getTracks().forEach((t) => t.stop());
      await live.stop();
      live = null;
      stop.hidden = true;
      start.disabled = false;
      status.textContent = "Stopped.";
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".golive-form").forEach(setUp);
  });
})();
