// Entry point of classroom.html: a listening classroom's TV screen that also
// sends the room's camera and microphone.
import { startTv } from './tv.js';

startTv({ role: 'classroom', publishes: true });
