// Local capture and playback helpers: camera / microphone / screen capture
// with classroom-friendly constraints, device lists for <select>s, attaching
// tracks to media elements (with autoplay-block detection) and first-frame
// detection via requestVideoFrameCallback.

const CAMERA = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 25, max: 30 } };
const MIC = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

function pick(deviceId, base) {
  return deviceId ? { ...base, deviceId: { exact: deviceId } } : { ...base };
}

/** Opens a camera and/or microphone in one prompt; returns `{video, audio}` tracks. */
export async function openCapture({ camera, mic, cameraId = '', micId = '' }) {
  if (!navigator.mediaDevices?.getUserMedia) throw Object.assign(new Error('no mediaDevices'), { name: 'InsecureContext' });
  const stream = await navigator.mediaDevices.getUserMedia({
    video: camera ? pick(cameraId, CAMERA) : false,
    audio: mic ? pick(micId, MIC) : false,
  });
  return { video: stream.getVideoTracks()[0] || null, audio: stream.getAudioTracks()[0] || null };
}

/** Opens a camera only (the blackboard camera). */
export async function openCamera(cameraId = '') {
  return (await openCapture({ camera: true, cameraId })).video;
}

/** Asks the user for a screen or window to share (courseware). */
export async function openScreen() {
  if (!navigator.mediaDevices?.getDisplayMedia) {
    throw Object.assign(new Error('getDisplayMedia unsupported'), { name: 'NotSupportedError' });
  }
  const stream = await navigator.mediaDevices.getDisplayMedia({
    video: { frameRate: { ideal: 15, max: 30 } },
    audio: false,
  });
  return stream.getVideoTracks()[0];
}

/** `{video: [...], audio: [...]}` of MediaDeviceInfo. */
export async function listDevices() {
  if (!navigator.mediaDevices?.enumerateDevices) return { video: [], audio: [] };
  const all = await navigator.mediaDevices.enumerateDevices();
  return {
    video: all.filter((d) => d.kind === 'videoinput' && d.deviceId),
    audio: all.filter((d) => d.kind === 'audioinput' && d.deviceId),
  };
}

/** Fills a <select> with devices, keeping `selected` when present. */
export function fillDeviceSelect(select, devices, selected, fallbackLabel) {
  const keep = selected || select.value;
  select.replaceChildren(...devices.map((d, i) => {
    const opt = document.createElement('option');
    opt.value = d.deviceId;
    opt.textContent = d.label || fallbackLabel(i + 1);
    return opt;
  }));
  if (devices.some((d) => d.deviceId === keep)) select.value = keep;
}

/** The deviceId a track was opened on, if the browser tells. */
export function deviceIdOf(track) {
  return track?.getSettings?.().deviceId || '';
}

/** i18n key describing a getUserMedia / getDisplayMedia failure. */
export function mediaErrorKey(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'media.denied';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'media.notFound';
    case 'NotReadableError':
    case 'AbortError':
      return 'media.busy';
    case 'InsecureContext':
      return 'media.insecure';
    case 'NotSupportedError':
      return 'media.unsupported';
    case 'InvalidStateError':
      return 'media.needGesture';
    default:
      return 'media.failed';
  }
}

const wanted = new WeakMap(); // element -> track to show once the page has loaded

/**
 * Shows `track` in `el` (a <video> or <audio>); no-op if already shown.
 * `onBlocked` runs when the browser refuses to autoplay (sound without a gesture).
 * Before the window's load event the assignment waits: a media element fed
 * by a track with no frames yet would otherwise hold the load event back.
 */
export function attachTrack(el, track, onBlocked) {
  if (document.readyState !== 'complete') {
    const first = !wanted.has(el);
    wanted.set(el, track);
    if (first) addEventListener('load', () => attachTrack(el, wanted.get(el), onBlocked), { once: true });
    return;
  }
  wanted.delete(el);
  const current = el.srcObject?.getTracks?.()[0];
  if (track && current === track) return;
  if (!track) {
    el.srcObject = null;
    return;
  }
  el.srcObject = new MediaStream([track]);
  playElement(el, onBlocked);
}

export function playElement(el, onBlocked) {
  const p = el.play();
  if (p && typeof p.catch === 'function') {
    p.catch((err) => {
      if (err?.name === 'NotAllowedError' && onBlocked) onBlocked(el);
    });
  }
}

/** Creates a `<video playsinline autoplay muted>`. */
export function makeVideo(className = '') {
  const v = document.createElement('video');
  v.playsInline = true;
  v.autoplay = true;
  v.muted = true;
  v.setAttribute('playsinline', '');
  v.setAttribute('autoplay', '');
  v.setAttribute('muted', '');
  if (className) v.className = className;
  return v;
}

/** Creates a hidden `<audio autoplay>`. */
export function makeAudio() {
  const a = document.createElement('audio');
  a.autoplay = true;
  a.setAttribute('autoplay', '');
  return a;
}

/**
 * Calls `cb(performance.now())` once, when `video` gets its first decoded
 * frame: requestVideoFrameCallback where it runs, or the element's first
 * `loadeddata` / `resize` with a size (these also fire in background tabs,
 * where frames are never presented).
 */
export function onFirstFrame(video, cb) {
  let fired = false;
  const fire = () => {
    if (fired) return;
    fired = true;
    video.removeEventListener('resize', check);
    video.removeEventListener('loadeddata', check);
    cb(performance.now());
  };
  const check = () => { if (video.videoWidth > 0) fire(); };
  if (typeof video.requestVideoFrameCallback === 'function') video.requestVideoFrameCallback(fire);
  video.addEventListener('resize', check);
  video.addEventListener('loadeddata', check);
}

/** Stops a track if there is one. */
export function stopTrack(track) {
  if (track && track.readyState !== 'ended') track.stop();
}
