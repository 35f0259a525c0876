// switchboard dashboard: the Tutorials page (static text; only the top bar
// and the live indicator).
import { start } from '../app.js';

start();
