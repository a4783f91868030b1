// Text from the cluster on the way to a terminal. Anyone who may write an object (a label, an
// event's message, a container's waiting reason) could otherwise put escape sequences into the
// output of whoever lists it: move the cursor, rewrite earlier lines, retitle the window
// (kubectl's CVE-2021-25743). Control characters are shown instead, ESC as ^[ as kubectl does.
// Logs are not escaped (kubectl prints them as they are), nor -o json|yaml, which are data.

/** C0 controls, DEL and C1 controls. */
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;
/** The same but tab and newline, for output of several lines (describe). */
const CONTROLS_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

const NAMED: Readonly<Record<string, string>> = { '\u001b': '^[', '\r': '\\r', '\n': '\\n', '\t': '\\t' };

function visible(c: string): string {
  return NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/** `s` as one line of a terminal: every control character shown (ESC as ^[, others as \r, \n, \xNN). */
export function escapeTerminal(s: string): string {
  return s.replace(CONTROLS, visible);
}

/** `s` as lines of a terminal: tabs and newlines kept, every other control character shown. */
export function escapeTerminalLines(s: string): string {
  return s.replace(CONTROLS_BUT_LINES, visible);
}
