// Admin REST API client for tests: create a class, add classrooms, mint join links,
// and build page URLs (token in the fragment, automation params in the query).

/** Call the admin API; throws with status and body on anything but the expected status. */
export async function adminCall(server, method, path, body, expect = 200) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${server.adminKey}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (res.status !== expect) {
    throw new Error(`${method} ${path} → ${res.status} (expected ${expect}): ${text}`);
  }
  return text ? JSON.parse(text) : null;
}

export const createClass = (server, title = 'Grade 5 Maths', teacher = 'Ms. Li') =>
  adminCall(server, 'POST', '/api/classes', { title, teacher }, 201);

export const addClassroom = (server, classId, name) =>
  adminCall(server, 'POST', `/api/classes/${classId}/classrooms`, { name }, 201);

/** Mint a join link: { token, url, role, expires_at }. */
export const mintLink = (server, classId, role, { classroomId, name, ttlSecs } = {}) =>
  adminCall(server, 'POST', `/api/classes/${classId}/links`, {
    role,
    ...(classroomId ? { classroom_id: classroomId } : {}),
    ...(name ? { name } : {}),
    ...(ttlSecs ? { ttl_secs: ttlSecs } : {}),
  }, 201);

/**
 * A class with `classrooms` listening classrooms and one observer link.
 * Returns { id, main: {token}, classrooms: [{id, name, token}], observer: {token} }.
 */
export async function setupClass(server, { classrooms = 0, title } = {}) {
  const cls = await createClass(server, title);
  const main = await mintLink(server, cls.id, 'main', { name: 'Teacher' });
  const rooms = [];
  for (let i = 1; i <= classrooms; i++) {
    const room = await addClassroom(server, cls.id, `Classroom ${i}`);
    const link = await mintLink(server, cls.id, 'classroom', { classroomId: room.id });
    rooms.push({ id: room.id, name: room.name, token: link.token });
  }
  const observer = await mintLink(server, cls.id, 'observer', { name: 'Observer' });
  return { id: cls.id, main, classrooms: rooms, observer };
}

/** URL of a page: `page` is e.g. 'teacher.html'; `params` go to the query, the token to the hash. */
export function pageUrl(server, page, token, params = {}) {
  const q = new URLSearchParams(params).toString();
  return `${server.url}/${page}${q ? `?${q}` : ''}#token=${encodeURIComponent(token)}`;
}
