/**
 * The envelope read from a message's own header (as `sendmail -t` does): the sender from
 * From, the recipients from To, Cc and Bcc. RFC 5322 §3.4 address lists are read with
 * display names, quoted strings, comments and groups; anything fancier (obsolete routes,
 * encoded words in addresses) is beyond what the command needs.
 *
 * Deliberately left out: reading the bytes (message-source.ts) and checking addresses,
 * which the connection does before it writes anything.
 */

/** Header fields by lower-case name, each value unfolded (RFC 5322 §2.2.3), in order. */
export function headerFields(head: string): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  const unfolded: string[] = [];
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && unfolded.length > 0) unfolded[unfolded.length - 1] += " " + line.trim();
    else if (line !== "") unfolded.push(line);
  }
  for (const field of unfolded) {
    const colon = field.indexOf(":");
    if (colon <= 0) continue;
    const name = field.slice(0, colon).trim().toLowerCase();
    fields.set(name, [...(fields.get(name) ?? []), field.slice(colon + 1).trim()]);
  }
  return fields;
}

/**
 * The addresses of an RFC 5322 address list: `a@x, "Doe, J" <b@y>, Team: c@z, d@z;`
 * gives a@x, b@y, c@z and d@z. Comments and display names are dropped.
 */
export function parseAddressList(value: string): string[] {
  const addresses: string[] = [];
  let word = "";
  let angle: string | undefined;
  let inAngle = false;
  let quoted = false;
  let comment = 0;
  const flush = () => {
    const address = (angle ?? word).trim();
    if (address) addresses.push(address);
    word = "";
    angle = undefined;
  };
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (comment > 0) {
      if (c === "\\") i++;
      else if (c === "(") comment++;
      else if (c === ")") comment--;
      continue;
    }
    if (quoted) {
      // A quoted display name is dropped; a quoted local part inside <> is kept.
      if (c === "\\") {
        if (inAngle) angle += c + (value[i + 1] ?? "");
        i++;
      } else {
        if (inAngle) angle += c;
        if (c === '"') quoted = false;
      }
      continue;
    }
    if (c === '"') {
      quoted = true;
      if (inAngle) angle += c;
    } else if (c === "(") comment = 1;
    else if (c === "<") {
      inAngle = true;
      angle = "";
    } else if (c === ">") inAngle = false;
    else if (inAngle) angle += c;
    else if (c === "," || c === ";") flush();
    // A group's name ends at its colon; its members follow.
    else if (c === ":") word = "";
    else if (c !== " " && c !== "\t") word += c;
  }
  flush();
  return addresses;
}

/** The envelope a message's header gives: the first From address, and every To, Cc and Bcc address once. */
export function envelopeFromHeader(head: string): { from?: string; to: string[] } {
  const fields = headerFields(head);
  const from = parseAddressList((fields.get("from") ?? []).join(","))[0];
  const to = ["to", "cc", "bcc"].flatMap((name) => (fields.get(name) ?? []).flatMap(parseAddressList));
  return { from, to: [...new Set(to)] };
}

/**
 * The header with its Bcc fields (and their folded lines) removed, as `sendmail -t`
 * does: the blind recipients get the message, but no recipient sees who they were.
 * Works on a latin1 string so every other byte goes out exactly as it came.
 */
export function withoutBcc(head: string): string {
  return head.replace(/^bcc[ \t]*:.*(?:\r?\n[ \t].*)*(?:\r?\n|$)/gim, "");
}
