// Publishing from a browser over WHIP: a page of any origin loads this script and calls
//   const live = await mediahooksWhip.publish("https://host/api/whip/<stream>", token, media);
//   ...; await live.stop();
// `media` is a MediaStream (getUserMedia's camera and microphone, or a canvas's test pattern).
// H.264 is preferred (the server keeps it as sent: MP4 clips); `{ video: "VP8" }` as a fourth
// argument sends VP8 instead (kept as sent too: WebM clips). Every ICE candidate goes in the
// offer, because the server takes no trickled ones.
(function () {
  "use strict";

  const GATHER_MS = 5000;

  function prefer(transceiver, video) {
    const codecs = RTCRtpSender.getCapabilities("video").codecs;
    const wanted = codecs.filter((c) =>
      video === "VP8"
        ? c.mimeType === "video/VP8"
        : c.mimeType === "video/H264" && /packetization-mode=1/.test(c.sdpFmtpLine || ""),
    );
    if (wanted.length && transceiver.setCodecPreferences) {
      transceiver.setCodecPreferences(wanted.concat(codecs.filter((c) => c.mimeType === "video/rtx")));
    }
  }

  function gathered(pc) {
    return new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      const done = () => pc.iceGatheringState === "complete" && resolve();
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, GATHER_MS); // send what is gathered by then
    });
  }

  async function publish(endpoint, token, media, options) {
    const video = (options && options.video) || "H264";
    const pc = new RTCPeerConnection();
    for (const track of media.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [media] });
      if (track.kind === "video") prefer(transceiver, video);
    }
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const response = await fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/sdp", Authorization: "Bearer " + token },
      body: pc.localDescription.sdp,
    });
    if (response.status !== 201) {
      pc.close();
      let message = "the WHIP endpoint answered " + response.status;
      try {
        message = (await response.json()).data.message;
      } catch (e) {
        // not the envelope: keep the status
      }
      throw new Error(message);
    }
    const location = new URL(response.headers.get("Location"), endpoint).href;
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    return {
      pc: pc,
      location: location,
      stop: async function () {
        // DELETE first: closing the connection first would end the session on its own, and
        // the DELETE would then find nothing.
        try {
          await fetch(location, { method: "DELETE" });
        } finally {
          pc.close();
        }
      },
    };
  }

  // A moving test pattern and a tone, for a machine without a camera.
  function testPattern() {
    const canvas = document.createElement("canvas");
    canvas.width = 640;
    canvas.height = 360;
    const g = canvas.getContext("2d");
    let frame = 0;
    setInterval(() => {
      frame += 1;
      g.fillStyle = "hsl(" + ((frame * 3) % 360) + ", 70%, 45%)";
      g.fillRect(0, 0, canvas.width, canvas.height);
      g.fillStyle = "#fff";
      g.font = "64px sans-serif";
      g.fillText(new Date().toISOString().slice(11, 22), 40, 200);
    }, 1000 / 30);
    const stream = canvas.captureStream(30);
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    const out = audio.createMediaStreamDestination();
    tone.connect(out);
    tone.start();
    out.stream.getAudioTracks().forEach((t) => stream.addTrack(t));
    return stream;
  }

  window.mediahooksWhip = { publish: publish, testPattern: testPattern };
})();
