/*
 * spindle/net.h - UDP sockets and Unix-domain stream sockets (included by
 * spindle.h, after spindle/io.h).
 *
 * The same conventions as the TCP part of spindle/io.h: a socket is an
 * sp_async_fd registered with the current runtime; every future is embedded
 * in the caller's frame, initialised with its _init function, awaited with
 * SP_AWAIT, and leaves its result in `out` (a count or 0 on success, a
 * negative errno such as SP_ECONNREFUSED on failure). Functions that do not
 * wait return 0 or a negative errno. Sockets are closed with sp_tcp_close
 * (any socket) or sp_unix_close (a listener: also removes its path).
 *
 * A future holds a reference on its socket from its first poll to its end, so
 * sp_async_fd_free (or sp_tcp_close) while it waits is safe: it completes with
 * SP_EBADF. As for sp_io_rw, one reader and one writer at a time per socket:
 * each direction stores a single waker.
 */
#ifndef SPINDLE_NET_H
#define SPINDLE_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* ---- addresses ------------------------------------------------------------------ */

/* Fill *out with host:port (a numeric IPv4 or IPv6 address; host NULL:
 * 127.0.0.1). 0, or SP_EINVAL for anything that is not a numeric address
 * (resolving a name would block). */
int sp_sockaddr_parse(struct sockaddr_storage *out, const char *host, uint16_t port);
/* The port of an AF_INET or AF_INET6 address, or SP_EINVAL. */
int sp_sockaddr_port(const struct sockaddr_storage *ss);

/* ---- UDP -------------------------------------------------------------------------- */

/* Bind a UDP socket to host:port (host NULL: 127.0.0.1; "0.0.0.0" or "::"
 * for every interface; port 0: any free port). *out is the socket,
 * registered with the current runtime. SP_ENORUNTIME off a runtime thread. */
int sp_udp_bind(sp_async_fd **out, const char *host, uint16_t port);
/* Set the default peer (connect(2) on a datagram socket: it completes at
 * once). Afterwards sp_udp_send may be used, only datagrams from that peer
 * are received, and an ICMP "port unreachable" for it is reported by the next
 * receive as SP_ECONNREFUSED. 0 or a negative errno. */
int sp_udp_connect(sp_async_fd *sock, const char *host, uint16_t port);
/* The port the socket is bound to, or a negative errno. */
int sp_udp_local_port(sp_async_fd *sock);

/*
 * Send one datagram: out = len, or a negative errno; never a part of it
 * (-EMSGSIZE if it is too long for one datagram). sp_udp_send needs a
 * connected socket (else -EDESTADDRREQ). A bad destination given to
 * sp_udp_send_to_init is reported in `out` (SP_EINVAL) at the first poll.
 * Sends never raise SIGPIPE. buf must stay valid until the future completes.
 */
typedef struct sp_udp_send {
	sp_future base;
	ssize_t out;
	/* private */
	sp_async_fd *sock;
	const void *buf;
	size_t len;
	int err; /* from init: reported at the first poll */
	int held;
	socklen_t dest_len; /* 0: the connected peer */
	struct sockaddr_storage dest;
} sp_udp_send;
typedef sp_udp_send sp_udp_send_to;

void sp_udp_send_init(sp_udp_send *op, sp_async_fd *sock, const void *buf, size_t len);
void sp_udp_send_to_init(sp_udp_send_to *op, sp_async_fd *sock, const void *buf, size_t len,
			 const char *host, uint16_t port);
/* dest: an AF_INET or AF_INET6 address (as sp_sockaddr_parse or a received
 * `from` gives); copied, so it need not outlive the call. */
void sp_udp_send_to_addr_init(sp_udp_send_to *op, sp_async_fd *sock, const void *buf, size_t len,
			      const struct sockaddr_storage *dest);

/*
 * Receive exactly one datagram: out = the bytes stored in buf (0 for an
 * empty datagram: there is no end of file), or a negative errno. A datagram
 * longer than len is cut to len bytes, the rest is discarded and `truncated`
 * is set. sp_udp_recv_from also fills `from` (the sender; `from_len` its
 * length), which sp_sockaddr_port reads and sp_udp_send_to_addr_init takes.
 */
typedef struct sp_udp_recv {
	sp_future base;
	ssize_t out;
	int truncated;		      /* read-only after SP_READY */
	socklen_t from_len;	      /* read-only after SP_READY (recv_from) */
	struct sockaddr_storage from; /* read-only after SP_READY (recv_from) */
	/* private */
	sp_async_fd *sock;
	void *buf;
	size_t len;
	int want_from;
	int held;
} sp_udp_recv;
typedef sp_udp_recv sp_udp_recv_from;

void sp_udp_recv_init(sp_udp_recv *op, sp_async_fd *sock, void *buf, size_t len);
void sp_udp_recv_from_init(sp_udp_recv_from *op, sp_async_fd *sock, void *buf, size_t len);

/* ---- Unix-domain stream sockets ---------------------------------------------------- */

/*
 * Paths: a filesystem path (at most 107 bytes), or, when it starts with '@',
 * a name in Linux's abstract namespace (the rest of the string, at most 107
 * bytes; no file is created and nothing needs removing). Longer paths give
 * -ENAMETOOLONG, an empty one SP_EINVAL.
 *
 * Listen on path. If a file is already there and it is a socket nobody
 * listens on any more (a connect to it is refused), it is removed first; any
 * other file, or a live socket, gives -EADDRINUSE (a live listener sees that
 * probe as a connection that closes at once). backlog <= 0: 1024.
 */
int sp_unix_listen(sp_async_fd **out, const char *path, int backlog);

/* Accept one connection: out = 0 and *stream set (non-blocking, registered),
 * or a negative errno. Read and write the stream with the sp_io_rw futures;
 * sp_tcp_shutdown and sp_tcp_close work on it. */
typedef struct sp_unix_accept {
	sp_future base;
	int out;
	sp_async_fd *stream;
	sp_async_fd *listener; /* private */
	int held;	       /* private */
} sp_unix_accept;
void sp_unix_accept_init(sp_unix_accept *a, sp_async_fd *listener);

/* Connect to path: out = 0 and stream set, or a negative errno: -ENOENT
 * when no such file, SP_ECONNREFUSED when nobody listens there. While the
 * listener's backlog is full the connect is retried (backoff from 1 to 32 ms)
 * until it is accepted into the queue; wrap it in sp_timeout to bound that. */
typedef struct sp_unix_connect {
	sp_future base;
	int out;
	sp_async_fd *stream;
	/* private */
	int fd;
	int err; /* from init: reported at the first poll */
	int started;
	unsigned backoff_ms;
	int sleeping;
	socklen_t addr_len;
	struct sockaddr_un addr;
	sp_sleep sleep;
} sp_unix_connect;
void sp_unix_connect_init(sp_unix_connect *c, const char *path);

/* Deregister and close any socket, like sp_tcp_close; a Unix listener bound
 * to a filesystem path also has that path removed first (if it still names a
 * socket; a relative path is taken relative to the current directory). */
void sp_unix_close(sp_async_fd *sock);

#endif /* SPINDLE_NET_H */
