/* meditate review: one track's page. The data is inlined (pages open from file://);
   wavesurfer.js draws the precomputed peaks over the page's own <audio> element. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("track-data").textContent);
  var audio = document.getElementById("audio");
  var items = Array.prototype.slice.call(document.querySelectorAll("#sentences .sentence"));
  var openedVersion = window.__reviewVersion;
  var current = -1;
  var COLORS = { ok: "rgba(60, 130, 200, 0.10)", warn: "rgba(230, 160, 0, 0.30)",
                 fail: "rgba(210, 40, 40, 0.35)", "": "rgba(60, 130, 200, 0.10)" };

  function seek(seconds) {
    audio.currentTime = seconds;
    update();
  }

  function sentenceAt(time) {
    for (var i = 0; i < data.sentences.length; i++) {
      var sentence = data.sentences[i];
      if (time < sentence.start_s) return -1;
      if (time < sentence.end_s) return i;
    }
    return -1;
  }

  function update() {
    var found = sentenceAt(audio.currentTime);
    if (found !== current) {
      if (current >= 0) items[current].classList.remove("current");
      if (found >= 0) {
        items[found].classList.add("current");
        if (!audio.paused) items[found].scrollIntoView({ block: "nearest" });
      }
      current = found;
      document.body.setAttribute("data-current", String(found));
    }
    drawLoudness();
  }

  items.forEach(function (item) {
    var start = parseFloat(item.getAttribute("data-start"));
    item.addEventListener("click", function () { seek(start); });
    item.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); seek(start); }
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll("#chapters .chapter"), function (button) {
    button.addEventListener("click", function () { seek(parseFloat(button.getAttribute("data-start"))); });
  });

  /* previous and next flagged sentence: buttons, and the keys p and n */
  var flagged = items.filter(function (item) {
    return item.classList.contains("qa-warn") || item.classList.contains("qa-fail");
  });
  function jumpFlag(step) {
    if (!flagged.length) return;
    var now = audio.currentTime + (step > 0 ? 0.01 : -0.01);
    var starts = flagged.map(function (item) { return parseFloat(item.getAttribute("data-start")); });
    var target = -1;
    for (var i = 0; i < starts.length; i++) {
      if (step > 0 && starts[i] > now) { target = i; break; }
      if (step < 0 && starts[i] < now) target = i;
    }
    if (target < 0) target = step > 0 ? 0 : starts.length - 1;  /* wrap around */
    seek(starts[target]);
    flagged[target].scrollIntoView({ block: "center" });
  }
  var next = document.getElementById("next-flag"), previous = document.getElementById("previous-flag");
  if (next) next.addEventListener("click", function () { jumpFlag(1); });
  if (previous) previous.addEventListener("click", function () { jumpFlag(-1); });
  document.addEventListener("keydown", function (event) {
    if (event.target && /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName)) return;
    if (event.key === "n") jumpFlag(1);
    if (event.key === "p") jumpFlag(-1);
  });

  ["timeupdate", "seeked", "play", "pause"].forEach(function (name) {
    audio.addEventListener(name, update);
  });
  (function follow() {
    if (!audio.paused) update();
    window.requestAnimationFrame(follow);
  })();

  /* the waveform, with chapter markers and sentence regions */
  if (window.WaveSurfer && window.WaveSurfer.Regions) {
    var regions = window.WaveSurfer.Regions.create();
    var surfer = window.WaveSurfer.create({
      container: "#waveform", media: audio, height: 96, normalize: false,
      peaks: [data.levels.peaks, data.levels.troughs], duration: data.duration_s,
      waveColor: "#7a9cc6", progressColor: "#2f5d8c", cursorColor: "#d33", cursorWidth: 2,
      plugins: [regions]
    });
    surfer.on("ready", function () {
      data.sentences.forEach(function (sentence, index) {
        regions.addRegion({ id: "sentence-" + index, start: sentence.start_s, end: sentence.end_s,
                            color: COLORS[sentence.status] || COLORS[""], drag: false, resize: false });
      });
      data.chapters.forEach(function (chapter, index) {
        var label = document.createElement("span");
        label.className = "chapter-label";  /* styled here: the waveform lives in a shadow root */
        label.style.cssText = "display:inline-block;white-space:nowrap;font:11px sans-serif;" +
          "color:#fff;background:rgba(120,60,160,0.9);padding:0 0.3em;";
        label.textContent = chapter.title;
        label.dir = "auto";
        regions.addRegion({ id: "chapter-" + index, start: chapter.start_s, content: label,
                            color: "rgba(120, 60, 160, 0.9)", drag: false, resize: false });
      });
      document.body.setAttribute("data-waveform", "ready");
    });
    regions.on("region-clicked", function (region, event) {
      event.stopPropagation();
      seek(region.start);
    });
    window.__review = { surfer: surfer, regions: regions };
  }

  /* the short-term loudness, with the integrated level dashed and the playhead */
  var canvas = document.getElementById("loudness");
  var TOP = -5, BOTTOM = -60;
  function drawLoudness() {
    if (!canvas || !canvas.getContext) return;
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth, height = canvas.clientHeight;
    if (canvas.width !== Math.round(width * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    var context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    var duration = data.duration_s || 1;
    var x = function (seconds) { return seconds / duration * width; };
    var y = function (lufs) {
      var clamped = Math.max(BOTTOM, Math.min(TOP, lufs));
      return (TOP - clamped) / (TOP - BOTTOM) * height;
    };
    context.font = "11px sans-serif";
    context.fillStyle = "#666";
    context.strokeStyle = "#ddd";
    [-10, -20, -30, -40, -50].forEach(function (level) {
      context.beginPath(); context.moveTo(0, y(level)); context.lineTo(width, y(level)); context.stroke();
      context.fillText(level + " LUFS", 2, y(level) - 2);
    });
    context.strokeStyle = "rgba(120, 60, 160, 0.6)";
    data.chapters.forEach(function (chapter) {
      context.beginPath(); context.moveTo(x(chapter.start_s), 0); context.lineTo(x(chapter.start_s), height); context.stroke();
    });
    if (typeof data.integrated_lufs === "number") {
      context.setLineDash([4, 4]);
      context.strokeStyle = "#2a7";
      context.beginPath(); context.moveTo(0, y(data.integrated_lufs)); context.lineTo(width, y(data.integrated_lufs)); context.stroke();
      context.setLineDash([]);
    }
    var curve = data.levels.short_term_lufs, step = data.levels.loudness_step_s;
    context.strokeStyle = "#2f5d8c";
    context.lineWidth = 1.5;
    context.beginPath();
    for (var i = 0; i < curve.length; i++) {
      var px = x((i + 1) * step), py = y(curve[i]);
      if (i === 0) context.moveTo(px, py); else context.lineTo(px, py);
    }
    context.stroke();
    context.lineWidth = 1;
    context.strokeStyle = "#d33";
    context.beginPath(); context.moveTo(x(audio.currentTime), 0); context.lineTo(x(audio.currentTime), height); context.stroke();
  }
  if (canvas) {
    canvas.addEventListener("click", function (event) {
      var box = canvas.getBoundingClientRect();
      seek((event.clientX - box.left) / box.width * data.duration_s);
    });
    window.addEventListener("resize", drawLoudness);
  }

  /* back where it was after a reload (see below) */
  var wanted = /[#&]t=([0-9.]+)/.exec(window.location.hash);
  if (wanted) {
    var restore = function () { seek(parseFloat(wanted[1])); };
    if (audio.readyState >= 1) restore(); else audio.addEventListener("loadedmetadata", restore, { once: true });
  }
  update();

  /* reload when the track changes: <id>.version.js is loaded again every second (a new
     <script> element works from file://, where fetch does not) */
  window.setInterval(function () {
    var tag = document.createElement("script");
    tag.src = data.id + ".version.js?t=" + Date.now();
    tag.onload = function () {
      tag.remove();
      if (window.__reviewVersion !== openedVersion) {
        window.location.hash = "t=" + audio.currentTime.toFixed(2);
        window.location.reload();
      }
    };
    tag.onerror = function () { tag.remove(); };
    document.head.appendChild(tag);
  }, 1000);
})();
