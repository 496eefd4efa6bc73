// veil review: the page. Plain modern JS, no dependencies, works offline.
//
// The server owns the plan: every edit is one API call, which saves the plan file and
// answers with the updated regions of the file on screen. The page keeps no state of its
// own that could be lost; it draws the plan's boxes over the frame (in image pixel
// coordinates, through the SVG viewBox) and the tracks on the timeline. Speech segments
// lie in time, not in the picture: they have their own lane on the timeline, and a sound
// file (no frames) has that lane only, with the original sound in a player.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const ORIGIN_COLOURS = {
  detected: "#2fbf71", interpolated: "#f0a030", extended: "#8d8df0", reviewer: "#3aa0ff", unanalysed: "#ff4d4d", held: "#a0522d", unchecked: "#e060d0",
};
const ROW = 16;           // timeline: pixels per track
const LABEL = 48;         // timeline: width of the track names
const MIN_DRAG = 4;       // screen pixels before a press becomes a drag (else it is a click)
const SPEECH_COLOUR = "#2ec4c4";
const KEPT_COLOUR = "#c8c8c8";
const NEW_SEGMENT_S = 1;  // a segment added at the current time lasts this long until its end is set
// What each voice mode does to the segments at export, for the reviewer.
const VOICE_TEXT = {
  keep: "kept: speech is NOT protected (review with --voice mute or anonymise to treat it)",
  mute: "speech segments are muted",
  "mute-all": "all sound is muted: the segments make no difference",
  anonymise: "speech segments are anonymised",
};

const $ = (id) => document.getElementById(id);
const S = {
  state: null,      // /api/state: files, undo/redo, export
  media: null,      // /api/media/{i}: the regions of the file on screen
  frame: 0,
  view: "redacted",
  selected: null,   // region id (a speech segment's too)
  shape: "ellipse",
  drawKind: "face", // the kind a region drawn by the reviewer hides
  hiddenKinds: new Set(), // kinds whose outlines the viewer filtered out (they are still redacted)
  playing: false,
  playRun: 0,       // which play loop is current
  busy: false,
};

// --- API --------------------------------------------------------------------

async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") {
    // The server takes a change only as JSON (a cross-site form cannot send that), so a
    // call without data still sends an empty object.
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body === undefined ? {} : body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (_) {  // the browser's own words ("Failed to fetch") named nothing the reviewer could act on
    throw new Error(method === "GET"
      ? "The review server is not running (stopped, or its terminal closed): start veil review again to go on."
      : "The review server is not running (stopped, or its terminal closed): this change was not made. Start " +
        "veil review again to go on: every change made before is saved in the plan.");
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!response.ok) {
    const message = (data && (data.error || (data.detail && JSON.stringify(data.detail)))) || text || response.statusText;
    throw new Error(message);
  }
  return data;
}

function say(message, isError = false) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

// Run one edit: show errors, take the updated state and regions from the answer. One at a
// time: a second is refused in words (it was dropped unsaid), and its reason stays typed.
async function edit(method, path, body, done) {
  if (S.busy) {
    say("Wait: the last change is still being made. Nothing else was changed.", true);
    return;
  }
  S.busy = true;
  try {
    const answer = await api(method, path, body);
    if (body && body.reason) $("reason").value = "";
    takeState(answer);
    if (answer.changed) S.media = answer.changed;
    else if (S.media) S.media = await api("GET", `api/media/${S.media.index}`);
    if (S.selected && !regionById(S.selected) && !segmentById(S.selected)) S.selected = null;
    if (done) done(answer);
    drawAll();
    return answer;
  } catch (error) {
    say(error.message, true);
    await catchUp();  // still busy: a next change waits for it
  } finally {
    S.busy = false;
  }
}

// After a change refused, or made but not saved (the plan's disk full: 507), the page takes the
// plan as the server holds it, without a word over the error's: its next undo names the
// revision the server has (an older one is refused as another window's change).
async function catchUp() {
  try {
    const state = await api("GET", "api/state");
    if (state.revision <= S.state.revision) return;
    takeState(state);
    if (S.media) S.media = await api("GET", `api/media/${S.media.index}`);
    if (S.selected && !regionById(S.selected) && !segmentById(S.selected)) S.selected = null;
    drawAll();
  } catch (_) {
    // the server stopped: the error said so
  }
}

// The reason typed for an edit; cleared once the edit is made (`edit`), kept if it fails.
function withReason(body) {
  const reason = $("reason").value.trim();
  return reason ? { ...body, reason } : body;
}

function takeState(state) {
  S.state = state;
  showExportRunning(state);
  if (state.export && !$("export-panel").hidden) showExport(state.export);
  $("undo").disabled = !state.undo;
  $("redo").disabled = !state.redo;
  $("undo").title = state.undo ? `Undo ${state.undo} (Ctrl+Z)` : "Nothing to undo";
  $("redo").title = state.redo ? `Redo ${state.redo} (Ctrl+Shift+Z)` : "Nothing to redo";
}

// An export this page did not start (another window's, or one running before a reload): edits
// are refused while it runs, and the page says why before one is tried.
function showExportRunning(state) {
  if (state.export && state.export.state === "running" && $("export-panel").hidden) {
    $("export-panel").hidden = false;
    pollExport();
  }
}

// --- gallery ------------------------------------------------------------------

function showGallery() {
  S.media = null;
  S.playing = false;
  $("viewer").hidden = true;
  $("gallery").hidden = false;
  $("title").textContent = "";
  const gallery = $("gallery");
  gallery.replaceChildren();
  for (const item of S.state.media) {
    const card = document.createElement("button");
    card.type = "button";
    card.className = "card";
    card.dataset.index = item.index;
    const img = document.createElement(item.kind === "audio" ? "div" : "img");
    if (item.kind === "audio") {
      img.className = "sound";
      img.textContent = "sound";
    } else {
      img.alt = item.name;
      img.src = `media/${item.index}/frame/0.jpg?view=redacted&size=thumb&rev=${S.state.revision}`;
    }
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = item.name;
    const meta = document.createElement("div");
    meta.className = "meta";
    const frames = item.kind !== "image" ? `video, ${item.frame_count} frames` : "photo";
    const kept = item.kept_visible ? `, ${item.kept_visible} kept visible` : "";
    const speech = item.speech ? `, ${item.speech} speech segment(s)` : "";
    const audible = item.kept_audible ? `, ${item.kept_audible} kept audible` : "";
    meta.textContent = item.kind === "audio" ? `sound${speech}${audible}`
      : `${frames}, ${item.width}x${item.height}, ${item.regions} region(s)${kept}${speech}${audible}`;
    card.append(img, name, meta);
    card.addEventListener("click", () => openMedia(item.index));
    gallery.append(card);
  }
}

async function openMedia(index) {
  try {
    S.media = await api("GET", `api/media/${index}`);
  } catch (error) {
    say(error.message, true);
    return;
  }
  S.frame = 0;
  S.selected = null;
  S.playing = false;
  $("gallery").hidden = true;
  $("viewer").hidden = false;
  window.scrollTo(0, 0);  // a gallery scrolled down left the picture above a small window
  const sound = S.media.kind === "audio";
  $("video-controls").hidden = S.media.kind === "image";
  $("stage").hidden = sound;
  $("transport").hidden = sound;
  for (const id of ["picture-options", "draw-options", "region-list-title", "region-list", "frame-legend"]) {
    $(id).hidden = sound;
  }
  $("speech-options").hidden = !hasSound();
  $("voice-mode").textContent = `voices: ${S.state.render.voice}: ${VOICE_TEXT[S.state.render.voice]}`;
  const player = $("sound");
  player.pause();
  player.hidden = !hasSound();
  // The original sound, fetched only when played (preload none): it is the whole input file.
  if (hasSound()) player.src = `media/${S.media.index}/sound`; else player.removeAttribute("src");
  $("title").textContent = S.media.name;
  $("overlay").setAttribute("viewBox", `0 0 ${S.media.width} ${S.media.height}`);
  say(sound ? "Listen, and check every speech segment on the timeline."
    : S.media.kind !== "image"
      ? "Step through the frames; check every track and speech segment on the timeline."
      : "Check every face is covered; drag to draw a missed one.");
  drawSpeechOptions();
  drawAll();
}

// --- drawing ------------------------------------------------------------------

function regionById(id) {
  return S.media && S.media.regions.find((r) => r.id === id);
}

function segmentById(id) {
  return S.media && S.media.speech.find((s) => s.id === id);
}

function hasSound() {
  return S.media.sound_seconds !== null;
}

// --- time: a video's frames and its sound's seconds ---------------------------

// Speech times are seconds from the sound's first sample; a video's frame times, and its player's,
// are on the file's own clock, where that sample lies at sound_origin (a broadcast capture's sound
// starts seconds in, a track may start after the picture). A sound file's player runs on its
// sound's clock.
function soundOrigin() {
  return S.media.kind === "audio" ? 0 : S.media.sound_origin || 0;
}

// The time shown now, in seconds of the sound: the frame's for a video, the player's for a sound file.
function now() {
  if (S.media.kind === "audio") return $("sound").currentTime;
  const times = S.media.frame_times;
  return times.length > S.frame ? times[S.frame] - soundOrigin() : 0;
}

// Where a time of the sound lies on a video's frame axis (fractional: between two frames' times).
function frameAt(soundTime) {
  const times = S.media.frame_times;
  if (!times.length) return 0;
  const t = soundTime + soundOrigin();
  let lo = 0, hi = times.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (times[mid] <= t) lo = mid; else hi = mid - 1;
  }
  const step = lo + 1 < times.length ? times[lo + 1] - times[lo] : lo > 0 ? times[lo] - times[lo - 1] : 0;
  return step > 0 ? lo + Math.min(1, Math.max(0, (t - times[lo]) / step)) : lo;
}

// Go to a time: the frame shown then, or the player's position.
function seekTime(t) {
  if (S.media.kind === "audio") {
    $("sound").currentTime = Math.min(Math.max(0, t), S.media.sound_seconds);
    drawAll();
  } else {
    seek(Math.floor(frameAt(t)));
  }
}

// Speech is shown, typed and taken from "now" in seconds from the file's start, as the frame label
// and the audit report count them (a time copied from either lands on the same sound); the server
// keeps the sound's own seconds.
function speechOffset() {
  return S.media.kind === "audio" ? 0 : soundOrigin() - S.media.file_start;
}

function seconds(t) {
  return `${t.toFixed(2)} s`;
}

function boxAt(region, frame) {
  // Boxes are sorted by frame; a photo has frame 0 only.
  return region.boxes.find((b) => b[0] === frame) || null;
}

function frameUrl(frame, view) {
  const rev = view === "redacted" ? S.state.revision : 0;
  return `media/${S.media.index}/frame/${frame}.jpg?view=${view}&rev=${rev}`;
}

function drawAll() {
  if (!S.media) {
    if (S.state && !$("gallery").hidden) showGallery();
    return;
  }
  if (S.media.kind === "audio") {
    drawSelection();
    drawClock();
    return;
  }
  const img = $("frame");
  const url = frameUrl(S.frame, S.view);
  if (img.getAttribute("src") !== url) {
    img.src = url;
    // The frame before stays on screen until this one has loaded, under this one's boxes and
    // number: dimmed meanwhile, and not drawn on (`pictureLoading`). The same frame's picture
    // again (after an edit, in the other view) is no other picture.
    img.dataset.wanted = `${S.media.index}/${S.frame}`;
    img.classList.toggle("loading", img.dataset.shown !== img.dataset.wanted);
  }
  fitStage();
  drawOverlay();
  drawPanel();
  if (S.media.kind !== "image") {
    drawTimeline();
    const times = S.media.frame_times;
    const t = times.length > S.frame ? ` (${(times[S.frame] - S.media.file_start).toFixed(2)} s)` : "";
    $("frame-label").textContent = `frame ${S.frame} / ${S.media.frame_count - 1}${t}`;
    $("play").textContent = S.playing ? "Pause" : "Play";
    preload(S.frame + 1);
  }
}

// The picture fills the space it has (small video frames are enlarged, so boxes are easy
// to draw), in the shape players show (non-square pixels stretched); the overlay, in image
// coordinates, stretches with it.
function fitStage() {
  const work = $("stage").parentElement;
  const room = work.clientWidth;
  const below = S.media.kind !== "image" ? 260 : 90;
  const high = Math.max(200, window.innerHeight - 80 - below);  // 80: header and status line
  const [shownWidth, shownHeight] = S.media.shown;
  const scale = Math.min(room / shownWidth, high / shownHeight);
  $("frame").style.width = `${Math.floor(shownWidth * scale)}px`;
  $("frame").style.height = `${Math.floor(shownHeight * scale)}px`;
}

function preload(frame) {
  if (frame < S.media.frame_count) new Image().src = frameUrl(frame, S.view);
}

function drawOverlay() {
  const svg = $("overlay");
  svg.replaceChildren();
  for (const region of S.media.regions) {
    const box = boxAt(region, S.frame);
    if (!box || S.hiddenKinds.has(region.kind)) continue;
    const shape = svgShape(region.shape, box[1], box[2], box[3], box[4]);
    shape.dataset.kind = region.kind;
    shape.classList.add("region", box[5]);
    if (region.keep_visible) shape.classList.add("kept");
    if (region.id === S.selected) shape.classList.add("selected");
    shape.dataset.region = region.id;
    shape.dataset.origin = box[5];
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${region.id} (${region.kind}): ${box[5]}${region.keep_visible ? " (kept visible)" : ""}`;
    shape.append(title);
    svg.append(shape);
  }
  const selected = regionById(S.selected);
  const box = selected && boxAt(selected, S.frame);
  if (box) {
    const size = handleSize();
    for (const [corner, x, y] of [["nw", box[1], box[2]], ["ne", box[3], box[2]], ["sw", box[1], box[4]], ["se", box[3], box[4]]]) {
      const handle = document.createElementNS(SVG, "rect");
      handle.setAttribute("x", x - size / 2);
      handle.setAttribute("y", y - size / 2);
      handle.setAttribute("width", size);
      handle.setAttribute("height", size);
      handle.classList.add("handle");
      handle.dataset.corner = corner;
      handle.style.cursor = `${corner}-resize`;
      svg.append(handle);
    }
  }
}

function svgShape(kind, x0, y0, x1, y1) {
  if (kind === "box") {
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("x", x0);
    rect.setAttribute("y", y0);
    rect.setAttribute("width", Math.max(0, x1 - x0));
    rect.setAttribute("height", Math.max(0, y1 - y0));
    return rect;
  }
  const ellipse = document.createElementNS(SVG, "ellipse");
  ellipse.setAttribute("cx", (x0 + x1) / 2);
  ellipse.setAttribute("cy", (y0 + y1) / 2);
  ellipse.setAttribute("rx", Math.abs(x1 - x0) / 2);
  ellipse.setAttribute("ry", Math.abs(y1 - y0) / 2);
  return ellipse;
}

// Handles are about 10 screen pixels whatever the image's size on screen.
function handleSize() {
  const rect = $("overlay").getBoundingClientRect();
  return rect.width ? (10 * S.media.width) / rect.width : 10;
}

// A list item a keyboard reaches (Tab) and chooses (Enter or Space), as a click does; the
// item chosen keeps the focus when the list is drawn anew.
function choosable(item, id) {
  item.tabIndex = 0;
  item.setAttribute("role", "button");
  item.addEventListener("click", () => select(id));
  item.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" && event.key !== " ") return;
    event.preventDefault();
    event.stopPropagation();  // Space would also play
    select(id);
  });
}

function refocus(list, id) {
  const item = id && [...list.children].find((child) => (child.dataset.region || child.dataset.segment) === id);
  if (item) item.focus();
}

function drawPanel() {
  const list = $("region-list");
  const focused = list.contains(document.activeElement) ? document.activeElement.dataset.region : null;
  list.replaceChildren();
  for (const region of S.media.regions) {
    const box = boxAt(region, S.frame);
    if (!box && S.media.kind === "image") continue;
    if (!box && region.id !== S.selected) continue;
    const item = document.createElement("li");
    item.dataset.region = region.id;
    item.classList.toggle("selected", region.id === S.selected);
    const what = box ? box[5] : "no box in this frame";
    item.textContent = `${region.id} `;
    const dim = document.createElement("span");
    dim.className = "dim";
    dim.textContent = `${region.kind}, ${region.source}, ${what}${region.keep_visible ? ", kept visible" : ""}`;
    item.append(dim);
    choosable(item, region.id);
    list.append(item);
  }
  refocus(list, focused);
  drawSegmentList();
  drawSelection();
}

// The speech segments heard at the current time (and the selected one): a sound file's only regions.
function drawSegmentList() {
  const list = $("segment-list");
  const focused = list.contains(document.activeElement) ? document.activeElement.dataset.segment : null;
  list.replaceChildren();
  if (!hasSound()) return;
  const t = now();
  for (const segment of S.media.speech) {
    if (!(segment.start <= t && t < segment.end) && segment.id !== S.selected) continue;
    const item = document.createElement("li");
    item.dataset.segment = segment.id;
    item.classList.toggle("selected", segment.id === S.selected);
    item.textContent = `${segment.id} `;
    const dim = document.createElement("span");
    dim.className = "dim";
    dim.textContent = `speech, ${segment.source}, ${seconds(segment.start + speechOffset())}-` +
      `${seconds(segment.end + speechOffset())}` +
      (segment.keep_visible ? ", kept audible" : "");
    item.append(dim);
    choosable(item, segment.id);
    list.append(item);
  }
  refocus(list, focused);
}

function drawSelection() {
  const panel = $("selection");
  panel.replaceChildren();
  const segment = segmentById(S.selected);
  if (segment) {
    drawSegmentSelection(panel, segment);
    return;
  }
  const region = regionById(S.selected);
  if (!region) {
    const hint = document.createElement("p");
    hint.className = "hint";
    hint.textContent = "Click a region (or a track in the timeline) to select it.";
    panel.append(hint);
    return;
  }
  const box = boxAt(region, S.frame);
  const first = region.boxes[0][0], last = region.boxes[region.boxes.length - 1][0];
  const head = document.createElement("p");
  head.id = "selected-info";
  const range = S.media.kind !== "image" ? `, frames ${first}-${last} (${region.boxes.length} boxes)` : "";
  head.textContent = `Selected ${region.id}: ${region.kind}, ${region.shape}, made by ${region.source}${range}` +
    (region.keep_visible ? `. Kept visible: ${region.reason}` : "");
  panel.append(head);

  const buttons = document.createElement("div");
  buttons.className = "buttons";
  if (box && S.media.kind !== "image") {
    buttons.append(button("delete-box", "Delete box in this frame", "Delete", () =>
      edit("POST", `api/media/${S.media.index}/regions/${region.id}/delete-box`, withReason({ frame: S.frame })), "danger"));
  }
  buttons.append(button("delete-region", S.media.kind !== "image" ? "Delete whole track" : "Delete region",
    S.media.kind !== "image" ? "Shift+Delete" : "Delete", deleteRegion, "danger"));
  if (region.kind === "face") {  // plates, text and people are hidden as boxes (the server refuses an ellipse)
    buttons.append(button("toggle-shape", region.shape === "ellipse" ? "Make it a box" : "Make it an ellipse", "", () =>
      edit("POST", `api/media/${S.media.index}/regions/${region.id}/shape`,
        withReason({ shape: region.shape === "ellipse" ? "box" : "ellipse" }))));
  }
  if (region.keep_visible) {
    buttons.append(button("keep-visible", "Hide again", "", () =>
      edit("POST", `api/media/${S.media.index}/regions/${region.id}/keep`, withReason({ keep: false }))));
  } else {
    buttons.append(button("keep-visible", "Keep visible (consent)…", "Needs a reason", keepVisible));
  }
  panel.append(buttons);

  if (S.media.kind !== "image") {
    const row = document.createElement("div");
    row.className = "row";
    const label = document.createElement("label");
    label.textContent = "Follow to frame ";
    const input = document.createElement("input");
    input.type = "number";
    input.id = "extend-to";
    input.min = 0;
    input.max = S.media.frame_count - 1;
    input.value = S.frame >= last ? S.media.frame_count - 1 : (S.frame <= first ? 0 : last);
    label.append(input);
    const go = button("extend", "Follow", "The tracker carries this frame's box across the range; existing boxes are kept", () => {
      const end = Number(input.value);
      if (!box) { say("select a frame where the region has a box, then follow from there", true); return; }
      say(`following ${region.id} from frame ${S.frame} to ${end}…`);
      edit("POST", `api/media/${S.media.index}/regions/${region.id}/extend`, withReason({ start: S.frame, end }),
        (answer) => say(`added ${answer.added} box(es) to ${region.id}`));
    });
    row.append(label, go);
    panel.append(row);
  }
}

function drawSegmentSelection(panel, segment) {
  const head = document.createElement("p");
  head.id = "selected-info";
  head.textContent = `Selected ${segment.id}: speech, ${seconds(segment.start + speechOffset())} to ` +
    `${seconds(segment.end + speechOffset())}, ` +
    `found by ${segment.source}` + (segment.keep_visible ? `. Kept audible: ${segment.reason}` : "");
  panel.append(head);
  const path = `api/media/${S.media.index}/regions/${segment.id}`;
  const buttons = document.createElement("div");
  buttons.className = "buttons";
  buttons.append(button("play-segment", "Play", "Play the original sound of this segment", () => playSegment(segment)));
  buttons.append(button("delete-segment", "Delete segment", "Not speech: leave this sound as it is (Delete)",
    deleteRegion, "danger"));
  if (segment.keep_visible) {
    buttons.append(button("keep-audible", "Treat again", "Mute or anonymise it with the rest", () =>
      edit("POST", `${path}/keep`, withReason({ keep: false }))));
  } else {
    buttons.append(button("keep-audible", "Keep audible (consent)…", "Needs a reason", keepVisible));
  }
  panel.append(buttons);
  const [startInput, endInput] = timeInputs(panel, "segment", segment.start, segment.end);
  const row = document.createElement("div");
  row.className = "row";
  row.append(button("set-times", "Set times", "Move the segment's start and end", () =>
    edit("POST", `${path}/times`, withReason(typedTimes(startInput, endInput)),
      () => say(`${segment.id} now ${startInput.value}-${endInput.value} s`))));
  panel.append(row);
}

// The times typed, on the sound's own clock.
function typedTimes(startInput, endInput) {
  return { start: Number(startInput.value) - speechOffset(), end: Number(endInput.value) - speechOffset() };
}

// Start and end inputs (seconds from the file's start), each with a button that takes the current time.
function timeInputs(parent, prefix, start, end) {
  return [["start", start], ["end", end]].map(([name, value]) => {
    const row = document.createElement("div");
    row.className = "row";
    const label = document.createElement("label");
    label.textContent = `${name[0].toUpperCase()}${name.slice(1)} (s) `;
    const input = document.createElement("input");
    input.type = "number";
    input.id = `${prefix}-${name}`;
    input.min = speechOffset();
    input.max = S.media.sound_seconds + speechOffset();
    input.step = 0.01;
    input.value = (value + speechOffset()).toFixed(2);
    label.append(input);
    row.append(label, button(`${prefix}-${name}-now`, "now", "Take the current time", () => { input.value = (now() + speechOffset()).toFixed(2); }));
    parent.append(row);
    return input;
  });
}

function drawSpeechOptions() {
  const box = $("segment-new");
  box.replaceChildren();
  if (!hasSound()) return;
  const t = now();
  const [startInput, endInput] = timeInputs(box, "new", t, Math.min(t + NEW_SEGMENT_S, S.media.sound_seconds));
  box.append(button("add-segment", "Add segment", "Mark speech the detector missed", () =>
    edit("POST", `api/media/${S.media.index}/speech`, withReason(typedTimes(startInput, endInput)),
      (answer) => { S.selected = answer.region; say(`added ${answer.region}`); })));
}

// Play a segment's original sound from its start (and stop at its end).
function playSegment(segment) {
  const player = $("sound");
  player.currentTime = segment.start + soundOrigin();
  player.dataset.stopAt = segment.end + soundOrigin();
  player.play().catch((error) => say(`cannot play the sound here: ${error.message}`, true));
}

function onSoundTime() {
  const player = $("sound");
  if (player.dataset.stopAt && player.currentTime >= Number(player.dataset.stopAt)) {
    player.pause();
    delete player.dataset.stopAt;
  }
  if (!S.media) return;
  // A video's frames follow its playing sound (roughly: a frame is fetched per step).
  if (S.media.kind !== "audio" && !player.paused) seek(Math.floor(frameAt(player.currentTime - soundOrigin())));
  else if (S.media.kind === "audio") drawClock();
}

// A sound file's position moved: the playhead, the time and the segments heard now (the selection's
// inputs are left alone, so a time being typed survives playing).
function drawClock() {
  drawTimeline();
  drawSegmentList();
  $("frame-label").textContent = `${seconds(now())} / ${seconds(S.media.sound_seconds)}`;
}

function button(id, text, title, action, extra) {
  const b = document.createElement("button");
  b.type = "button";
  b.id = id;
  b.textContent = text;
  if (title) b.title = title;
  if (extra) b.classList.add(extra);
  b.addEventListener("click", action);
  return b;
}

function select(id) {
  S.selected = id;
  const segment = segmentById(id);
  if (segment) {
    seekTime(segment.start);  // redraws all
    return;
  }
  if (S.media.kind !== "audio") drawOverlay();
  drawPanel();
  if (S.media.kind !== "image") drawTimeline();
}

// --- edits ----------------------------------------------------------------------

// Each edit says what it did, so a key pressed by mistake is seen (and undone with Ctrl+Z).
function deleteRegion() {
  if (!S.selected) return;
  const id = S.selected;
  const what = segmentById(id) ? "treated" : "hidden";
  return edit("POST", `api/media/${S.media.index}/regions/${id}/delete`, withReason({}),
    () => say(`deleted ${id}: it will not be ${what} (Ctrl+Z undoes this)`));
}

function deleteBoxHere() {
  if (segmentById(S.selected)) return deleteRegion();
  const region = regionById(S.selected);
  if (!region) return;
  if (S.media.kind === "image") return deleteRegion();
  if (!boxAt(region, S.frame)) { say(`${region.id} has no box in this frame`, true); return; }
  if (pictureLoading()) return;
  const frame = S.frame;
  return edit("POST", `api/media/${S.media.index}/regions/${region.id}/delete-box`, withReason({ frame }),
    () => say(`removed ${region.id}'s box on frame ${frame}: that frame is not hidden there (Ctrl+Z undoes this)`));
}

function keepVisible() {
  const reason = $("reason").value.trim();
  if (!reason) {
    const what = segmentById(S.selected) ? "Keep audible" : "Keep visible";
    say(`Type the reason (who consented, and how) in the Reason field first, then press ${what} again.`, true);
    $("reason").focus();
    return;
  }
  const id = S.selected;
  const what = segmentById(id) ? "audible" : "visible";
  return edit("POST", `api/media/${S.media.index}/regions/${id}/keep`, withReason({ keep: true }),
    () => say(`${id} kept ${what}, for the reason given (Ctrl+Z undoes this)`));
}

// The server undoes only a change to the file on screen (one to another file is named instead),
// and only the one this page offers: after a change in another window it refuses, and the page follows.
function step(path, action, said) {
  const body = { media: S.media ? S.media.index : null, revision: S.state ? S.state.revision : null };
  return edit("POST", path, body, said).then((answer) => answer || followOtherWindows(
    `Nothing was ${action}: the plan was changed in another window, and this page now shows it. ` +
    `Press it again if it is still meant.`));
}
function undo() { return step("api/undo", "undone", (a) => showStep("undid", a.undone, a.region)); }
function redo() { return step("api/redo", "redone", (a) => showStep("redid", a.redone, a.region)); }

// What an undo or redo changed, named and shown: the region it changed selected, on the frame
// nearest the one on screen where it has a box. Undone on another frame, a box drawn over a
// missed face vanished out of sight, "undid add_region" all that was said.
function showStep(verb, action, id) {
  const region = id ? regionById(id) : null;
  if (!region) {  // a speech segment, many regions, or one undone away
    const segment = id && segmentById(id);
    if (segment) select(id);
    say(`${verb} ${action}${id ? ` of ${id}` : ""}${id && !segment ? `: ${id} is no longer in the plan` : ""}`);
    return;
  }
  if (S.media.kind !== "image" && !boxAt(region, S.frame) && region.boxes.length) {
    const nearest = region.boxes.reduce((a, b) => (Math.abs(b[0] - S.frame) < Math.abs(a[0] - S.frame) ? b : a));
    S.frame = nearest[0];
  }
  select(id);
  if (S.media.kind !== "image") drawAll();
  say(`${verb} ${action} of ${id}${S.media.kind === "image" ? "" : ` (shown at frame ${S.frame})`}`);
}

// --- pointer: select, move, resize, draw ------------------------------------------

let drag = null;

function toImage(event) {
  const point = $("overlay").createSVGPoint();
  point.x = event.clientX;
  point.y = event.clientY;
  const p = point.matrixTransform($("overlay").getScreenCTM().inverse());
  return { x: Math.min(Math.max(p.x, 0), S.media.width), y: Math.min(Math.max(p.y, 0), S.media.height) };
}

// Whether the picture on screen is still another frame's (`drawAll`): a box drawn or moved over
// it would be saved for the frame whose number is shown.
function pictureLoading() {
  if (!$("frame").classList.contains("loading")) return false;
  say("Wait: this frame's picture is still loading. Nothing was changed.", true);
  return true;
}

function onPointerDown(event) {
  if (!S.media || event.button !== 0 || pictureLoading()) return;
  // preventDefault below keeps the focus where it was: on a radio button or the kind menu
  // clicked before, which then took Delete and the arrows as its own (a box selected on the
  // picture could not be deleted). The picture takes it, as a click anywhere else would.
  if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
  const target = event.target;
  const at = toImage(event);
  const start = { x: event.clientX, y: event.clientY, at };
  if (target.dataset.corner) {
    const box = boxAt(regionById(S.selected), S.frame);
    drag = { kind: "resize", corner: target.dataset.corner, box: box.slice(1, 5), start };
  } else if (target.dataset.region && target.dataset.region === S.selected) {
    const box = boxAt(regionById(S.selected), S.frame);
    drag = { kind: "move", box: box.slice(1, 5), start };
  } else if (target.dataset.region) {
    // Pressed on a region not selected: a click selects it, a drag draws a new one over it (a drag
    // begun just inside a neighbour's ellipse, meant to cover a missed face, moved the neighbour
    // off its own face, unsaid). Only a selected region moves.
    drag = { kind: "draw", pressed: target.dataset.region, start };
  } else {
    drag = { kind: "draw", start };
  }
  $("overlay").setPointerCapture(event.pointerId);
  event.preventDefault();
}

function dragged(event) {
  return Math.hypot(event.clientX - drag.start.x, event.clientY - drag.start.y) >= MIN_DRAG;
}

function dragBox(event) {
  const at = toImage(event);
  const dx = at.x - drag.start.at.x, dy = at.y - drag.start.at.y;
  let [x0, y0, x1, y1] = drag.box || [drag.start.at.x, drag.start.at.y, at.x, at.y];
  if (drag.kind === "move") { x0 += dx; x1 += dx; y0 += dy; y1 += dy; }
  if (drag.kind === "resize") {
    if (drag.corner.includes("w")) x0 += dx; else x1 += dx;
    if (drag.corner.includes("n")) y0 += dy; else y1 += dy;
  }
  return [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
}

function onPointerMove(event) {
  if (!drag || !dragged(event)) return;
  const [x0, y0, x1, y1] = dragBox(event);
  const svg = $("overlay");
  svg.querySelector(".drawing")?.remove();
  const shape = drag.kind === "draw" ? drawnShape() : regionById(S.selected).shape;
  const ghost = svgShape(shape, x0, y0, x1, y1);
  ghost.classList.add("drawing");
  svg.append(ghost);
}

// The shape a new region is drawn in: the chosen one for a face, a box for any other kind.
function drawnShape() {
  return S.drawKind === "face" ? S.shape : "box";
}

function onPointerUp(event) {
  if (!drag) return;
  const current = drag;
  const moved = dragged(event);
  const box = moved ? dragBox(event) : null;
  drag = null;
  $("overlay").querySelector(".drawing")?.remove();
  if (!moved) {
    if (current.kind === "draw") select(current.pressed || null);
    return;
  }
  if (pictureLoading()) {  // the frame changed under the drag (playing): its picture is not the one drawn on
    drawOverlay();
    return;
  }
  if (current.kind === "draw") {
    edit("POST", `api/media/${S.media.index}/regions`, withReason({ frame: S.frame, shape: drawnShape(), kind: S.drawKind, box }),
      (answer) => { S.selected = answer.region; say(`added ${answer.region}`); });
  } else {
    const id = S.selected, verb = current.kind === "move" ? "moved" : "resized";
    edit("POST", `api/media/${S.media.index}/regions/${id}/box`, withReason({ frame: S.frame, box }),
      () => say(`${verb} ${id} on this frame (Ctrl+Z puts it back)`));
  }
}

// --- video: stepping, playing, timeline --------------------------------------------

function seek(frame) {
  if (!S.media || S.media.kind === "image" || S.media.kind === "audio") return;
  S.frame = Math.min(Math.max(0, Math.round(frame)), S.media.frame_count - 1);
  drawAll();
}

function togglePlay() {
  if (!S.media || S.media.kind === "image") return;
  if (S.media.kind === "audio") {
    const player = $("sound");
    if (player.paused) player.play().catch((error) => say(`cannot play the sound here: ${error.message}`, true));
    else player.pause();
    return;
  }
  S.playing = !S.playing;
  if (S.playing && S.frame >= S.media.frame_count - 1) S.frame = 0;
  drawAll();
  if (S.playing) play(++S.playRun);
}

// Playing shows each frame once it has loaded, at most at the video's own rate. `run`
// ends an older loop when play is pressed again.
function play(run) {
  if (!S.playing || run !== S.playRun || !S.media) return;
  const img = $("frame");
  if (!img.complete) {
    img.addEventListener("load", () => play(run), { once: true });
    return;
  }
  const times = S.media.frame_times;
  const gap = times.length > S.frame + 1 ? (times[S.frame + 1] - times[S.frame]) * 1000 : 40;
  setTimeout(() => {
    if (!S.playing || run !== S.playRun) return;
    if (S.frame >= S.media.frame_count - 1) { S.playing = false; drawAll(); return; }
    seek(S.frame + 1);
    play(run);
  }, Math.max(0, gap));
}

// The timeline's lanes, top to bottom: a video's frames row, the speech lane (a file with sound),
// then one row per track.
function lanes() {
  return [
    ...(S.media.kind !== "audio" ? [{ lane: "frames" }] : []),
    ...(hasSound() ? [{ lane: "speech" }] : []),
    ...S.media.regions.map((region) => ({ lane: "region", region })),
  ];
}

// The timeline's axis: a video's frames (its sound's seconds placed at their frames), a sound file's seconds.
function axis(width) {
  const sound = S.media.kind === "audio";
  const length = sound ? Math.max(S.media.sound_seconds, 0.001) : Math.max(1, S.media.frame_count);
  const x = (at) => LABEL + ((width - LABEL) * at) / length;
  return {
    length, x,
    at: (t) => (sound ? t : frameAt(t)),  // a time's place on the axis
    step: sound ? 0 : Math.max(1, (width - LABEL) / length),  // a frame's width
    head: sound ? x(now()) : x(S.frame) + Math.max(1, (width - LABEL) / length) / 2,
  };
}

function drawTimeline() {
  const canvas = $("timeline");
  const rows = lanes();
  const width = canvas.parentElement.clientWidth;
  const height = ROW * rows.length + 4;
  const scale = window.devicePixelRatio || 1;
  canvas.width = width * scale;
  canvas.height = height * scale;
  canvas.style.height = `${height}px`;
  const g = canvas.getContext("2d");
  g.scale(scale, scale);
  g.clearRect(0, 0, width, height);
  const ax = axis(width);
  const x = ax.x, w = ax.step;
  g.font = "11px system-ui, sans-serif";
  g.textBaseline = "middle";

  rows.forEach((row, index) => {
    const y = ROW * index;
    const selected = row.lane === "region" ? row.region.id === S.selected
      : row.lane === "speech" && segmentById(S.selected);
    if (selected) {
      g.fillStyle = "#3b3520";
      g.fillRect(0, y, width, ROW);
    }
    if (row.lane === "frames") {
      // Frames fully hidden: not analysable, or outside --start/--end and not left as they are.
      g.fillStyle = "#9aa3ad";
      g.fillText("frames", 2, y + ROW / 2);
      g.fillStyle = ORIGIN_COLOURS.unanalysed;
      for (const f of S.media.covered_frames) g.fillRect(x(f), y + 2, w, ROW - 4);
      // Frames left as they are without a check (--only-range): a gap the reviewer must see.
      g.fillStyle = ORIGIN_COLOURS.unchecked;
      for (const f of S.media.unchecked_frames) g.fillRect(x(f), y + 2, w, ROW - 4);
    } else if (row.lane === "speech") {
      g.fillStyle = SPEECH_COLOUR;
      g.fillText("speech", 2, y + ROW / 2);
      for (const segment of S.media.speech) {
        const x0 = x(ax.at(segment.start)), x1 = x(ax.at(segment.end));
        g.fillStyle = segment.keep_visible ? KEPT_COLOUR : SPEECH_COLOUR;
        g.fillRect(x0, y + 3, Math.max(2, x1 - x0), ROW - 6);
        if (segment.id === S.selected) {
          g.strokeStyle = "#ffe14d";
          g.lineWidth = 2;
          g.strokeRect(x0, y + 2, Math.max(2, x1 - x0), ROW - 4);
          g.lineWidth = 1;
        }
      }
    } else {
      g.fillStyle = "#e8eaed";
      g.fillText(row.region.id, 2, y + ROW / 2);
      for (const box of row.region.boxes) {
        g.fillStyle = row.region.keep_visible ? KEPT_COLOUR : ORIGIN_COLOURS[box[5]] || "#fff";
        g.fillRect(x(box[0]), y + 3, w, ROW - 6);
      }
    }
  });
  g.strokeStyle = "#ffffff55";
  for (const cut of S.media.scene_cuts) {
    g.beginPath(); g.moveTo(x(cut), 0); g.lineTo(x(cut), height); g.stroke();
  }
  g.fillStyle = "#ffe14d";
  g.fillRect(ax.head - 1, 0, 2, height);
}

function onTimelineClick(event) {
  const rect = $("timeline").getBoundingClientRect();
  const px = event.clientX - rect.left, py = event.clientY - rect.top;
  const row = lanes()[Math.floor(py / ROW)];
  const ax = axis(rect.width);
  const at = ((px - LABEL) / (rect.width - LABEL)) * ax.length;  // on the axis: a frame, or seconds
  if (row && row.lane === "speech" && px >= LABEL) {
    // A segment is hit within a few pixels: a short one is narrower than a finger.
    const slack = (4 * ax.length) / (rect.width - LABEL);
    const hit = S.media.speech.find((s) => ax.at(s.start) - slack <= at && at <= ax.at(s.end) + slack);
    if (hit) { select(hit.id); return; }
  }
  if (px >= LABEL) {
    if (S.media.kind === "audio") seekTime(at); else seek(at - 0.5);
  }
  if (row && row.lane === "region") select(row.region.id);
}

// --- keyboard ---------------------------------------------------------------------

function onKey(event) {
  if (event.target.closest("input, textarea, select")) return;
  const key = event.key;
  const mod = event.ctrlKey || event.metaKey;
  if (mod && key.toLowerCase() === "z") { event.preventDefault(); event.shiftKey ? redo() : undo(); return; }
  if (mod && key.toLowerCase() === "y") { event.preventDefault(); redo(); return; }
  if (mod || event.altKey) return;
  if (key === "g") { showGallery(); return; }
  if (!S.media) return;
  const step = event.shiftKey ? 10 : 1;
  const sound = S.media.kind === "audio";  // steps by seconds, not frames
  const actions = {
    ArrowRight: () => (sound ? seekTime(now() + step) : seek(S.frame + step)),
    ArrowLeft: () => (sound ? seekTime(now() - step) : seek(S.frame - step)),
    Home: () => (sound ? seekTime(0) : seek(0)),
    End: () => (sound ? seekTime(S.media.sound_seconds) : seek(S.media.frame_count - 1)),
    " ": togglePlay,
    Delete: () => (event.shiftKey ? deleteRegion() : deleteBoxHere()),
    Backspace: () => (event.shiftKey ? deleteRegion() : deleteBoxHere()),
    Escape: () => select(null),
    o: () => setView(S.view === "redacted" ? "original" : "redacted"),
    e: () => setShape(S.shape === "ellipse" ? "box" : "ellipse"),
  };
  const action = actions[key] || actions[key.toLowerCase()];
  if (action) { event.preventDefault(); action(); }
}

function setView(view) {
  S.view = view;
  document.querySelector(`input[name=view][value=${view}]`).checked = true;
  drawAll();
}

function setShape(shape) {
  S.shape = shape;
  document.querySelector(`input[name=shape][value=${shape}]`).checked = true;
}

// --- export -------------------------------------------------------------------------

async function startExport() {
  $("export-panel").hidden = false;
  showExport({ state: "running", done: 0, total: S.state.media.length, outputs: {}, revision: null });
  try {
    await api("POST", "api/export");
    // The export renders the plan as the server holds it: a change made in another window since
    // this page last looked is shown now, before the export is said to match the screen.
    await followOtherWindows();
  } catch (error) {
    say(error.message, true);
  }
  pollExport();
}

async function pollExport() {
  let status;
  try {
    status = await api("GET", "api/export");
  } catch (error) {
    say(error.message, true);
    // Not "Rendering 0 of N" for good: what the server did is not known here.
    $("export-status").dataset.state = "unknown";
    $("export-status").textContent = "Not known: the review server could not be reached. " + error.message;
    return;
  }
  showExport(status);
  if (status.state === "running") setTimeout(pollExport, 500);
}

function showExport(status) {
  const line = $("export-status");
  line.dataset.state = status.state;
  const texts = {
    running: `Rendering ${status.done} of ${status.total} file(s)…`,
    done: `Done: ${status.total} file(s) written, and the audit report ${status.report} (and .html beside it).`,
    failed: `Export failed: ${status.error}. ` + (status.report
      ? `The files listed below were written, and the audit report ${status.report} records each file's result; `
      : "No audit report was written; ") + "fix the problem and export again.",
    idle: "",
  };
  const changed = status.revision != null && S.state && S.state.revision !== status.revision
    && status.state !== "running";
  line.textContent = texts[status.state]
    + (changed ? " The plan has changed since: export again for the outputs to have the changes." : "")
    + (status.notes || []).map((note) => ` Before you publish: ${note}.`).join("");
  const list = $("export-outputs");
  list.replaceChildren();
  for (const [input, output] of Object.entries(status.outputs || {})) {
    const item = document.createElement("li");
    item.textContent = `${input.split(/[\\/]/).pop()} → ${output}`;
    list.append(item);
  }
}

// --- start ------------------------------------------------------------------------------

function pictureLoaded() {
  const img = $("frame");
  img.dataset.shown = img.dataset.wanted;
  img.classList.remove("loading");
}

async function start() {
  $("frame").addEventListener("load", pictureLoaded);
  $("frame").addEventListener("error", pictureLoaded);  // (said by the page's own error handling, if at all)
  $("to-gallery").addEventListener("click", showGallery);
  // Clicked, they let go of the focus: Enter pressed later undid one more change, unseen.
  $("undo").addEventListener("click", (event) => { event.currentTarget.blur(); undo(); });
  $("redo").addEventListener("click", (event) => { event.currentTarget.blur(); redo(); });
  $("export").addEventListener("click", startExport);
  $("export-close").addEventListener("click", () => { $("export-panel").hidden = true; });
  $("first").addEventListener("click", () => seek(0));
  $("back10").addEventListener("click", () => seek(S.frame - 10));
  $("back").addEventListener("click", () => seek(S.frame - 1));
  $("play").addEventListener("click", togglePlay);
  $("fwd").addEventListener("click", () => seek(S.frame + 1));
  $("fwd10").addEventListener("click", () => seek(S.frame + 10));
  $("last").addEventListener("click", () => seek(S.media.frame_count - 1));
  $("timeline").addEventListener("click", onTimelineClick);
  $("sound").addEventListener("timeupdate", onSoundTime);
  $("sound").addEventListener("seeked", onSoundTime);
  const overlay = $("overlay");
  overlay.addEventListener("pointerdown", onPointerDown);
  overlay.addEventListener("pointermove", onPointerMove);
  overlay.addEventListener("pointerup", onPointerUp);
  overlay.addEventListener("pointercancel", () => { drag = null; drawOverlay(); });
  for (const input of document.querySelectorAll("input[name=view]")) input.addEventListener("change", () => setView(input.value));
  for (const input of document.querySelectorAll("input[name=shape]")) input.addEventListener("change", () => setShape(input.value));
  $("draw-kind").addEventListener("change", () => { S.drawKind = $("draw-kind").value; });
  // A radio button chosen with the mouse lets go of the focus: the arrows step frames again (they
  // switched the view back). One reached with the keyboard keeps it, as a keyboard user expects.
  let pointing = false;
  document.addEventListener("pointerdown", () => { pointing = true; }, true);
  document.addEventListener("keydown", () => { pointing = false; }, true);
  for (const input of document.querySelectorAll("input[type=radio]")) {
    input.addEventListener("change", () => { if (pointing) input.blur(); });
  }
  for (const input of document.querySelectorAll("input[name=show-kind]")) {
    input.addEventListener("change", () => {
      if (input.checked) S.hiddenKinds.delete(input.value); else S.hiddenKinds.add(input.value);
      drawOverlay();
    });
  }
  document.addEventListener("keydown", onKey);
  // A frame the server cannot decode showed as nothing, with the outlines over it, unsaid.
  $("frame").addEventListener("error", () => say(`Frame ${S.frame} could not be shown: the server could not decode it.`, true));
  window.addEventListener("resize", () => S.media && drawAll());
  try {
    takeState(await api("GET", "api/state"));
  } catch (error) {
    say(error.message, true);
    return;
  }
  if (S.state.media.length === 1) openMedia(0);
  else showGallery();
  setInterval(followOtherWindows, OTHER_WINDOWS_MS);
}

// Another tab or window on the same review changes the plan: this page follows, or it would
// show regions deleted there as still hidden.
const OTHER_WINDOWS_MS = 2000;

async function followOtherWindows(said) {
  if (S.busy || !S.state) return;
  let state;
  try {
    state = await api("GET", "api/state");
  } catch (_) {
    return;  // the server stopped: the next edit says so
  }
  showExportRunning(state);  // (an export changes no revision)
  // Revisions only grow: an older one is an answer an edit made here overtook (taken, it would
  // say this page's own edit came from another window, and show the plan as it was before it).
  if (S.busy || state.revision <= S.state.revision) return;
  takeState(state);
  const shown = S.media;
  if (shown) {
    const media = await api("GET", `api/media/${shown.index}`);
    // Taken only if nothing replaced the regions on screen while it came: an edit made here
    // answers with newer ones (these would hide it, the page then at the plan's revision), and
    // another file may have been opened (these would be drawn, and edited, as its own).
    if (S.media !== shown) return;
    S.media = media;
  }
  if (S.selected && !regionById(S.selected) && !segmentById(S.selected)) S.selected = null;
  drawAll();
  say(said || "The plan was changed in another window; this page now shows it.", Boolean(said));
}

start();
