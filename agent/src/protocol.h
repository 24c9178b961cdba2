/*
 * The wire protocol between Hangar's server and hangar-agent (the TypeScript side is
 * src/runtime/agent-protocol.ts; keep the two in step).
 *
 * The server listens on a unix socket in a host directory of the machine's own, mounted
 * read-only into the machine at /.hangar/run; the agent connects out to it and keeps one
 * idle connection there. A connection carries one session at a time: the server sends a
 * request frame, the spare process the agent forked for that connection handles it, and
 * the agent connects a fresh idle connection (with a new spare). When the session's last
 * frame (F_EXIT or F_FAILED) ends with "r", the spare then waits on the same connection
 * for the next F_EXEC, dropping any other frame (stdin, a signal or a resize the server
 * sent before it read the last frame): a command costs no connection and no fork of the
 * agent. Without it (an older agent, or a spare that cannot go on), the server closes the
 * connection after the last frame.
 *
 * A frame is a 4-byte little-endian payload length, a 1-byte type, then the payload.
 * Strings inside payloads are NUL-terminated, one after the other.
 */
#ifndef HANGAR_AGENT_PROTOCOL_H
#define HANGAR_AGENT_PROTOCOL_H

#define HANGAR_AGENT_VERSION "1"
#define HANGAR_AGENT_SOCKET "/.hangar/run/agent.sock"
#define HANGAR_AGENT_BINARY "/.hangar/bin/hangar-agent"
/* Larger frames are a protocol violation: the session ends. */
#define FRAME_MAX (8u * 1024u * 1024u)
/* Stdin the server may have sent and not yet seen acknowledged; more ends the session. */
#define STDIN_WINDOW_MAX (16u * 1024u * 1024u)

/* agent -> server */
#define F_HELLO 'H'   /* version\0 : sent on every new connection */
#define F_STARTED 'P' /* pid\0 : the command runs, with this pid inside the machine */
#define F_FAILED 'F'  /* kind\0message\0[r\0] : it never ran; kind is not_found or cannot_start; r: the connection serves again */
#define F_STDOUT 'O'  /* bytes (a terminal's output too) */
#define F_STDERR 'E'  /* bytes */
#define F_EXIT 'Q'    /* code\0[r\0] : exit status, 128+n for signal n; after every output ended; r: the connection serves again */
#define F_ACK 'A'     /* bytes\0 : that much stdin reached the command (the server's send window) */
#define F_STDIN_GONE 'C' /* the command closed its stdin: what was not read is dropped */

/* server -> agent */
#define F_EXEC 'X'    /* mode\0cwd\0rows\0cols\0argc\0argv...\0envc\0env...\0 ; mode: p (pipes) or t (terminal) */
#define F_STDIN 'I'   /* bytes; an empty payload closes stdin */
#define F_SIGNAL 'K'  /* signo\0 : sent to the command's process group */
#define F_RESIZE 'R'  /* rows\0cols\0 : the terminal's window size */

#endif
