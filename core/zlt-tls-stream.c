/* zlt-tls-stream.c: TLS for data connections, GnuTLS straight on the socket
 *
 * A #GTlsConnection of our own for the data connections, where glib-networking's costs
 * more memory than the bytes it carries: per connection it makes GnuTLS certificate
 * credentials (the server's with a copy of its key), a priority cache, and on the client
 * a parsed copy of the peer's certificate it keeps for the connection's life (about 37 KiB
 * per agent connection and 23 KiB per server connection, against about 10 KiB each here:
 * tests/bench/zlt-tls-bench --sessions). Here the credentials and the priority cache are
 * made once per process (per trust setting, per server certificate) and shared, the
 * client checks the server's certificate during the handshake on its DER bytes and keeps
 * nothing of it. The server issues TLS 1.3 session tickets and the client offers the
 * newest one it kept for the same server and trust setting, so that a replacement standby
 * connection skips the certificate's signature and verification (see "the client's
 * session tickets" for why that keeps the trust decision).
 *
 * It is a #GTlsConnection, so what looks under a TLS connection finds the socket as
 * before ("base-io-stream": the relay's fd wait, reset on close, socket timeouts, PROXY
 * addresses), and the relay batches its reads record by record as it does for
 * glib-networking's. Its input and output streams are pollable: reads and writes never
 * block the main loop, and neither does the handshake, which runs on the main context
 * driven by the socket's readiness (glib-networking runs it in a worker thread).
 *
 * Reads ask GnuTLS for what it has: one record per call. GnuTLS asks for what the
 * record needs (its header, then its body), and gets it from a read-ahead buffer that
 * one recv() filled with as much as the socket had, up to two large records (see
 * pull_func): a burst of small records costs one recv() instead of two per record.
 * So a whole record may wait in the stream while the socket is not readable: the
 * stream says readable then, its source is ready at once, and the relay asks
 * zlt_tls_stream_has_buffered() before it waits on the fd.
 * A write encrypts one record (16 KiB of plaintext at most) per call; when it would
 * block, GnuTLS keeps the encrypted record and the next write must start with the same
 * bytes (it sends the kept record and counts it): the relay retries with the bytes it
 * could not hand over, which is that. Closing the output stream sends close_notify
 * (half-close: reading goes on); the end of the peer's stream without close_notify is an
 * error (%G_TLS_ERROR_EOF), as glib-networking's require-close-notify has it. Nothing is
 * sent on a socket that was closed under the stream (the relay's reset).
 *
 * The verification is zlt-tls.c's: with a pin, the leaf certificate's SHA-256 must match
 * it, whatever CAs say; otherwise the chain must verify against the CA file or the
 * system's CAs, for the host name, unless verification is off (insecure). A refusal
 * fails the handshake with zlt_tls_rejection_error()'s message.
 *
 * The input and output streams are two small private classes in this file: they exist
 * only as the connection's halves. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <glib/gi18n-lib.h>

#ifdef HAVE_GNUTLS
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#endif

#include "zlt-crypto.h"
#include "zlt-error.h"
#include "zlt-tls-stream.h"

#ifdef HAVE_GNUTLS

/* ---------------------------------------------------------------------------------
 * what every session shares */

static gnutls_priority_t
shared_priority (void)
{
  static gsize once = 0;
  static gnutls_priority_t priority = NULL;

  if (g_once_init_enter (&once))
    {
      /* glib-networking's rule: G_TLS_GNUTLS_PRIORITY (zlt_tls_init_priority() sets it),
       * else GnuTLS's usual order */
      const char *text = g_getenv ("G_TLS_GNUTLS_PRIORITY");

      if (text == NULL || gnutls_priority_init (&priority, text, NULL) < 0)
        {
          if (text != NULL)
            g_warning ("ignoring G_TLS_GNUTLS_PRIORITY for data connections: not a valid "
                       "GnuTLS priority");
          if (gnutls_priority_init (&priority, "NORMAL:%COMPAT", NULL) < 0)
            priority = NULL;
        }
      g_once_init_leave (&once, 1);
    }
  return priority;
}

G_LOCK_DEFINE_STATIC (credentials);
static GHashTable *client_credentials; /* trust key → gnutls_certificate_credentials_t */

static int verify_server (gnutls_session_t session);

/* One set of client credentials per trust setting, for the life of the process. */
static gnutls_certificate_credentials_t
client_credentials_for (const ZltTlsOptions *options, GError **error)
{
  gboolean pinned = options != NULL && options->pinned_sha256 != NULL;
  const char *ca_file = options != NULL && !pinned ? options->ca_file : NULL;
  gboolean insecure = options != NULL && !pinned && options->insecure;
  g_autofree char *key = g_strdup_printf ("%c%s",
                                          pinned     ? 'p'
                                          : insecure ? 'i'
                                                     : 'c',
                                          ca_file != NULL ? ca_file : "");
  gnutls_certificate_credentials_t creds;

  G_LOCK (credentials);
  if (client_credentials == NULL)
    client_credentials = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  creds = g_hash_table_lookup (client_credentials, key);
  if (creds == NULL)
    {
      int rc = gnutls_certificate_allocate_credentials (&creds);

      if (rc < 0)
        {
          G_UNLOCK (credentials);
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_TLS, "%s", gnutls_strerror (rc));
          return NULL;
        }
      /* a pin needs no CAs: the certificate is trusted by its fingerprint alone */
      if (ca_file != NULL)
        rc = gnutls_certificate_set_x509_trust_file (creds, ca_file, GNUTLS_X509_FMT_PEM);
      else if (!pinned && !insecure)
        rc = gnutls_certificate_set_x509_system_trust (creds);
      if (ca_file != NULL && rc <= 0)
        {
          G_UNLOCK (credentials);
          gnutls_certificate_free_credentials (creds);
          g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_TLS,
                               gnutls_strerror (rc < 0 ? rc : GNUTLS_E_NO_CERTIFICATE_FOUND));
          g_prefix_error (error, _ ("failed to load CA file %s: "), ca_file);
          return NULL;
        }
      gnutls_certificate_set_verify_function (creds, verify_server);
      g_hash_table_insert (client_credentials, g_steal_pointer (&key), creds);
    }
  G_UNLOCK (credentials);
  return creds;
}

#define SERVER_CREDENTIALS_KEY "zlt-tls-stream-credentials"

/* What a server certificate's data connections share: its GnuTLS credentials and the
 * master key of its session tickets. The key is random, made with the credentials and
 * only ever in this process's memory (never written, never logged): a server's tickets
 * are good until it restarts or loads its certificate again. GnuTLS uses it as the master
 * key of time-based keys that encrypt the tickets, rotated with the tickets' lifetime
 * (TICKET_LIFETIME_S). A server with one certificate (zlayer-tunnel server) has one key
 * per process; a test with two certificate objects has two servers. */
typedef struct
{
  gnutls_certificate_credentials_t creds;
  gnutls_datum_t ticket_key;
} ServerCredentials;

static void
server_credentials_free (gpointer data)
{
  ServerCredentials *sc = data;

  gnutls_certificate_free_credentials (sc->creds);
  if (sc->ticket_key.data != NULL)
    {
      explicit_bzero (sc->ticket_key.data, sc->ticket_key.size);
      gnutls_free (sc->ticket_key.data);
    }
  g_free (sc);
}

/* The server's credentials and ticket key, made once per certificate and kept on it. */
static ServerCredentials *
server_credentials_for (GTlsCertificate *certificate, GError **error)
{
  ServerCredentials *sc;

  G_LOCK (credentials);
  sc = g_object_get_data (G_OBJECT (certificate), SERVER_CREDENTIALS_KEY);
  if (sc == NULL)
    {
      g_autoptr (GString) chain = g_string_new (NULL);
      g_autofree char *key_pem = NULL;
      gnutls_certificate_credentials_t creds = NULL;
      gnutls_datum_t cert_datum, key_datum;
      gnutls_datum_t ticket_key = { NULL, 0 };
      int rc;

      /* the certificate and its issuers, as the server presents them */
      for (GTlsCertificate *c = certificate; c != NULL; c = g_tls_certificate_get_issuer (c))
        {
          g_autofree char *pem = NULL;

          g_object_get (c, "certificate-pem", &pem, NULL);
          if (pem != NULL)
            g_string_append (chain, pem);
        }
      g_object_get (certificate, "private-key-pem", &key_pem, NULL);
      if (chain->len == 0 || key_pem == NULL)
        {
          G_UNLOCK (credentials);
          g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_TLS,
                               _ ("the server certificate has no private key"));
          return NULL;
        }
      cert_datum.data = (unsigned char *) chain->str;
      cert_datum.size = (unsigned int) chain->len;
      key_datum.data = (unsigned char *) key_pem;
      key_datum.size = (unsigned int) strlen (key_pem);
      rc = gnutls_certificate_allocate_credentials (&creds);
      if (rc == 0)
        rc = gnutls_certificate_set_x509_key_mem2 (creds, &cert_datum, &key_datum,
                                                   GNUTLS_X509_FMT_PEM, NULL, 0);
      explicit_bzero (key_pem, strlen (key_pem));
      if (rc >= 0)
        rc = gnutls_session_ticket_key_generate (&ticket_key);
      if (rc < 0)
        {
          G_UNLOCK (credentials);
          if (creds != NULL)
            gnutls_certificate_free_credentials (creds);
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_TLS, _ ("cannot use the server certificate: %s"),
                       gnutls_strerror (rc));
          return NULL;
        }
      sc = g_new0 (ServerCredentials, 1);
      sc->creds = creds;
      sc->ticket_key = ticket_key;
      g_object_set_data_full (G_OBJECT (certificate), SERVER_CREDENTIALS_KEY, sc,
                              server_credentials_free);
    }
  G_UNLOCK (credentials);
  return sc;
}

/* ---------------------------------------------------------------------------------
 * the client's session tickets
 *
 * A data connection's full handshake costs both ends a certificate signature, its
 * verification and a key exchange; a resumed one (TLS 1.3, a ticket the server issued
 * earlier) skips the certificate. The agent keeps the newest ticket per server and trust
 * setting and offers it on its next data connection.
 *
 * On resumption no certificate is sent, so verify_server() does not run: neither the pin
 * nor the CAs are checked again. That is sound only because the ticket was issued over
 * a connection whose full handshake passed that same check, to that same identity: a
 * ticket is kept under the host name as dialled, the port, and the whole trust setting
 * (the pin itself, or the CA file, or the system's CAs, or none), and offered only to a
 * connection with all of them equal. A server that cannot decrypt the ticket (another
 * server, or the same one after a restart) answers with a full handshake, and the full
 * verification runs as on any connection. */

/* GnuTLS 3.6.4 to 3.6.13 did not bind the ticket key to the one given
 * (GNUTLS-SA-2020-06-03: TLS 1.3 authentication bypass): no tickets with those */
#define TICKETS_MIN_GNUTLS "3.6.14"
#if GNUTLS_VERSION_NUMBER >= 0x03060e
#define HAVE_TICKETS 1
#endif

static gboolean
tickets_usable (void)
{
#ifdef HAVE_TICKETS
  static gsize once = 0;
  static gboolean usable = FALSE;

  if (g_once_init_enter (&once))
    {
      usable = gnutls_check_version (TICKETS_MIN_GNUTLS) != NULL;
      g_once_init_leave (&once, 1);
    }
  return usable;
#else
  return FALSE;
#endif
}

#define TICKETS_MAX 4
/* a ticket is dropped this long after it came, whatever the server's lifetime for it */
#define TICKET_MAX_AGE_US ((gint64) G_USEC_PER_SEC * 3600)
/* how long this server's tickets live (GnuTLS's default is 6 h) */
#define TICKET_LIFETIME_S (2 * 3600)

typedef struct
{
  char *key; /* host, port and trust setting */
  gnutls_datum_t data;
  gint64 stored_us;
} Ticket;

G_LOCK_DEFINE_STATIC (tickets);
static GQueue tickets = G_QUEUE_INIT; /* of Ticket, newest first */

static void
ticket_free (Ticket *t)
{
  if (t->data.data != NULL)
    {
      explicit_bzero (t->data.data, t->data.size);
      gnutls_free (t->data.data);
    }
  g_free (t->key);
  g_free (t);
}

/* the identity and trust a ticket is bound to, or %NULL where none is kept */
static char *
ticket_key_for (GSocketConnection *base, const char *host, const ZltTlsOptions *options)
{
  g_autoptr (GSocketAddress) remote = g_socket_connection_get_remote_address (base, NULL);
  gboolean pinned = options != NULL && options->pinned_sha256 != NULL;
  const char *ca_file = options != NULL && !pinned ? options->ca_file : NULL;
  gboolean insecure = options != NULL && !pinned && options->insecure;

  if (host == NULL || !G_IS_INET_SOCKET_ADDRESS (remote))
    return NULL;
  return g_strdup_printf ("%s\n%u\n%c\n%s", host,
                          (guint) g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (remote)),
                          pinned     ? 'p'
                          : insecure ? 'i'
                          : ca_file  ? 'f'
                                     : 's',
                          pinned            ? options->pinned_sha256
                          : ca_file != NULL ? ca_file
                                            : "");
}

static GList *
tickets_find (const char *key)
{
  for (GList *l = tickets.head; l != NULL; l = l->next)
    if (g_str_equal (((Ticket *) l->data)->key, key))
      return l;
  return NULL;
}

/* Offers @key's ticket to @session, if one is kept and fresh; whether it did. */
static gboolean
tickets_offer (const char *key, gnutls_session_t session)
{
  gboolean offered = FALSE;
  GList *l;

  G_LOCK (tickets);
  l = tickets_find (key);
  if (l != NULL)
    {
      Ticket *t = l->data;

      if (g_get_monotonic_time () - t->stored_us < TICKET_MAX_AGE_US
          && gnutls_session_set_data (session, t->data.data, t->data.size) == 0)
        offered = TRUE;
      else
        {
          g_queue_delete_link (&tickets, l);
          ticket_free (t);
        }
    }
  G_UNLOCK (tickets);
  return offered;
}

/* Keeps @data (taken) as @key's ticket, the newest; the oldest goes beyond TICKETS_MAX. */
static void
tickets_keep (const char *key, gnutls_datum_t *data)
{
  Ticket *t = g_new0 (Ticket, 1);
  GList *l;

  t->key = g_strdup (key);
  t->data = *data;
  t->stored_us = g_get_monotonic_time ();
  data->data = NULL;
  data->size = 0;
  G_LOCK (tickets);
  l = tickets_find (key);
  if (l != NULL)
    {
      ticket_free (l->data);
      g_queue_delete_link (&tickets, l);
    }
  g_queue_push_head (&tickets, t);
  while (tickets.length > TICKETS_MAX)
    ticket_free (g_queue_pop_tail (&tickets));
  G_UNLOCK (tickets);
}

#endif /* HAVE_GNUTLS */

/**
 * zlt_tls_stream_can_resume:
 *
 * Returns: whether data connections resume sessions: GnuTLS at build time, and at least
 *   %TICKETS_MIN_GNUTLS at run time
 */
gboolean
zlt_tls_stream_can_resume (void)
{
#ifdef HAVE_GNUTLS
  return tickets_usable ();
#else
  return FALSE;
#endif
}

/* For tests: makes every kept ticket @by_us older, as if that time had passed. */
void
zlt_tls_stream_age_tickets (gint64 by_us)
{
#ifdef HAVE_GNUTLS
  G_LOCK (tickets);
  for (GList *l = tickets.head; l != NULL; l = l->next)
    ((Ticket *) l->data)->stored_us -= by_us;
  G_UNLOCK (tickets);
#endif
}

/**
 * zlt_tls_stream_forget_tickets:
 *
 * Drops the session tickets this process keeps for data connections (each next data
 * connection then does a full handshake).
 */
void
zlt_tls_stream_forget_tickets (void)
{
#ifdef HAVE_GNUTLS
  G_LOCK (tickets);
  g_queue_clear_full (&tickets, (GDestroyNotify) ticket_free);
  G_UNLOCK (tickets);
#endif
}

/* ---------------------------------------------------------------------------------
 * the connection */

struct _ZltTlsStream
{
  GTlsConnection parent_instance;

  GSocketConnection *base;
  GSocket *socket; /* base's */
  int fd;
  GInputStream *input;
  GOutputStream *output;
  gboolean is_server;
  ZltTlsOptions *options; /* client, until the handshake is done */
  char *host;             /* client: for the certificate's identity and SNI, as options */
  gboolean system_certdb; /* client: trusts the system's CAs ("use-system-certdb") */
#ifdef HAVE_GNUTLS
  gnutls_session_t session;
#endif
  int io_errno;            /* the socket error behind GnuTLS's last push or pull error */
  GError *rejected;        /* client: why the server's certificate was refused */
  char *ticket_key;        /* client: where its session ticket is kept (see "session tickets"),
                            * until it is kept or none will come */
  gboolean offered_ticket; /* client: a kept ticket went out in the ClientHello */
  gboolean kept_ticket;    /* client: the server's ticket of this session is kept */
  gboolean resumed;
  gboolean handshaken;
  gboolean ticket_due; /* server: the handshake is done but for our session ticket */
  gboolean closing;    /* the whole stream is being closed: no waiting */
  gboolean sent_bye;   /* close_notify is out */

  /* read-ahead under GnuTLS (see pull_func): raw bytes ahead[ahead_off, ahead_len) came
   * off the socket and GnuTLS has not asked for them yet; NULL whenever empty */
  guint8 *ahead;
  gsize ahead_off;
  gsize ahead_len;
};

static void zlt_tls_stream_initable_iface_init (GInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ZltTlsStream, zlt_tls_stream, G_TYPE_TLS_CONNECTION,
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE,
                                                      zlt_tls_stream_initable_iface_init))

enum
{
  PROP_0,
  PROP_BASE_IO_STREAM,
  PROP_REQUIRE_CLOSE_NOTIFY,
  PROP_REHANDSHAKE_MODE,
  PROP_USE_SYSTEM_CERTDB,
  PROP_DATABASE,
  PROP_INTERACTION,
  PROP_CERTIFICATE,
  PROP_PEER_CERTIFICATE,
  PROP_PEER_CERTIFICATE_ERRORS,
  PROP_ADVERTISED_PROTOCOLS,
  PROP_NEGOTIATED_PROTOCOL,
  PROP_PROTOCOL_VERSION,
  PROP_CIPHERSUITE_NAME,
};

/* ---- the socket under GnuTLS ---- */

#ifdef HAVE_GNUTLS

static gboolean
socket_gone (ZltTlsStream *self)
{
  /* a socket closed under us (the relay's reset) may have its fd number reused: never
   * touch the fd then */
  return self->socket == NULL || g_socket_is_closed (self->socket);
}

/* How much pull_func() takes off the socket at once: two records of the largest size
 * (16 KiB of plaintext and its overhead), so that a burst of small records costs one
 * recv() for many, and a large record one recv() instead of two (its header, then its
 * body). */
#define READ_AHEAD_SIZE (2 * (16384 + 256 + 5))

static void
ahead_clear (ZltTlsStream *self)
{
  g_clear_pointer (&self->ahead, g_free);
  self->ahead_off = self->ahead_len = 0;
}

/* GnuTLS reads what a record needs (its 5-byte header, then its body): served from a
 * read-ahead buffer that one recv() of up to READ_AHEAD_SIZE filled. The buffer exists
 * only while it holds bytes (an idle connection holds none). Two rules keep the socket's
 * readiness meaningful: a recv() happens only when the buffer is empty, so GnuTLS sees
 * "would block" only with nothing buffered; and what stays buffered after a read starts
 * at a record's start (GnuTLS takes whole records), so stream_has_record() can tell
 * whether a whole record waits here without the socket. */
static ssize_t
pull_func (gnutls_transport_ptr_t ptr, void *data, size_t size)
{
  ZltTlsStream *self = ptr;
  gsize n_copy;
  ssize_t n;

  if (self->ahead == NULL)
    {
      if (socket_gone (self))
        {
          self->io_errno = EBADF;
          gnutls_transport_set_errno (self->session, EBADF);
          return -1;
        }
      /* a read as large as GnuTLS's goes straight to it */
      if (size >= READ_AHEAD_SIZE)
        {
          do
            n = recv (self->fd, data, size, 0);
          while (n < 0 && errno == EINTR);
          if (n < 0)
            {
              self->io_errno = errno;
              gnutls_transport_set_errno (self->session, errno);
            }
          return n;
        }
      self->ahead = g_malloc (READ_AHEAD_SIZE);
      do
        n = recv (self->fd, self->ahead, READ_AHEAD_SIZE, 0);
      while (n < 0 && errno == EINTR);
      if (n <= 0)
        {
          if (n < 0)
            {
              self->io_errno = errno;
              gnutls_transport_set_errno (self->session, errno);
            }
          ahead_clear (self);
          return n;
        }
      self->ahead_off = 0;
      self->ahead_len = (gsize) n;
    }
  n_copy = MIN (size, self->ahead_len - self->ahead_off);
  memcpy (data, self->ahead + self->ahead_off, n_copy);
  self->ahead_off += n_copy;
  if (self->ahead_off == self->ahead_len)
    ahead_clear (self);
  return (ssize_t) n_copy;
}

/* Whether the read-ahead buffer holds a whole record (it starts at one): a read gets it
 * without the socket. A part of one is not: its rest comes with the socket's readiness. */
static gboolean
stream_has_record (ZltTlsStream *self)
{
  const guint8 *p;
  gsize avail;

  if (self->ahead == NULL)
    return FALSE;
  p = self->ahead + self->ahead_off;
  avail = self->ahead_len - self->ahead_off;
  return avail >= 5 && avail - 5 >= ((gsize) p[3] << 8 | p[4]);
}

static ssize_t
push_func (gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
  ZltTlsStream *self = ptr;
  struct msghdr msg = { 0 };
  ssize_t n;

  if (socket_gone (self))
    {
      self->io_errno = EBADF;
      gnutls_transport_set_errno (self->session, EBADF);
      return -1;
    }
  msg.msg_iov = (struct iovec *) iov;
  msg.msg_iovlen = (size_t) iovcnt;
  do
    n = sendmsg (self->fd, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    {
      self->io_errno = errno;
      gnutls_transport_set_errno (self->session, errno);
    }
  return n;
}

/* GnuTLS asks this only for DTLS or blocking handshakes with a timeout: neither here */
static int
pull_timeout_func (gnutls_transport_ptr_t ptr, unsigned int ms)
{
  ZltTlsStream *self = ptr;
  GIOCondition cond;

  if (socket_gone (self))
    return -1;
  cond = g_socket_condition_check (self->socket, G_IO_IN | G_IO_HUP | G_IO_ERR);
  return cond != 0 ? 1 : 0;
}

static void
certificate_flags_from_status (unsigned int status, GTlsCertificateFlags *flags)
{
  *flags = 0;
  if (status
      & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA | GNUTLS_CERT_SIGNATURE_FAILURE))
    *flags |= G_TLS_CERTIFICATE_UNKNOWN_CA;
  if (status & GNUTLS_CERT_UNEXPECTED_OWNER)
    *flags |= G_TLS_CERTIFICATE_BAD_IDENTITY;
  if (status & GNUTLS_CERT_NOT_ACTIVATED)
    *flags |= G_TLS_CERTIFICATE_NOT_ACTIVATED;
  if (status & GNUTLS_CERT_EXPIRED)
    *flags |= G_TLS_CERTIFICATE_EXPIRED;
  if (status & GNUTLS_CERT_REVOKED)
    *flags |= G_TLS_CERTIFICATE_REVOKED;
  if (status & GNUTLS_CERT_INSECURE_ALGORITHM)
    *flags |= G_TLS_CERTIFICATE_INSECURE;
  /* GNUTLS_CERT_INVALID comes with any of the above; alone, the chain did not verify */
  if (*flags == 0)
    *flags = G_TLS_CERTIFICATE_UNKNOWN_CA;
}

/* A certificate object for the refusal's message only (it names the fingerprint). */
static GTlsCertificate *
certificate_from_der (const gnutls_datum_t *der)
{
  gnutls_datum_t pem = { NULL, 0 };
  GTlsCertificate *certificate = NULL;

  if (gnutls_pem_base64_encode2 ("CERTIFICATE", der, &pem) == 0)
    {
      certificate = g_tls_certificate_new_from_pem ((const char *) pem.data, pem.size, NULL);
      gnutls_free (pem.data);
    }
  return certificate;
}

static int
reject (ZltTlsStream *self, const gnutls_datum_t *leaf, GTlsCertificateFlags flags)
{
  g_autoptr (GTlsCertificate) certificate = leaf != NULL ? certificate_from_der (leaf) : NULL;

  g_clear_error (&self->rejected);
  self->rejected = zlt_tls_rejection_error (self->options, certificate, flags);
  return GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
}

/* The client's trust decision, during the handshake (zlt-tls.c's rules). */
static int
verify_server (gnutls_session_t session)
{
  ZltTlsStream *self = gnutls_session_get_ptr (session);
  const ZltTlsOptions *options = self->options;
  unsigned int n_peers = 0;
  const gnutls_datum_t *peers = gnutls_certificate_get_peers (session, &n_peers);
  unsigned int status = 0;
  GTlsCertificateFlags flags;

  if (peers == NULL || n_peers == 0)
    return reject (self, NULL, G_TLS_CERTIFICATE_UNKNOWN_CA);
  if (options != NULL && options->pinned_sha256 != NULL)
    {
      g_autofree char *fingerprint
          = g_compute_checksum_for_data (G_CHECKSUM_SHA256, peers[0].data, peers[0].size);

      if (!zlt_secure_str_equal (fingerprint, options->pinned_sha256))
        return reject (self, &peers[0], G_TLS_CERTIFICATE_UNKNOWN_CA);
      return 0;
    }
  if (options != NULL && options->insecure)
    return 0;
  /* without a name, GnuTLS would check the chain but not whom it was issued for */
  if (self->host == NULL)
    return reject (self, &peers[0], G_TLS_CERTIFICATE_BAD_IDENTITY);
  if (gnutls_certificate_verify_peers3 (session, self->host, &status) < 0)
    status = GNUTLS_CERT_INVALID;
  if (status == 0)
    return 0;
  certificate_flags_from_status (status, &flags);
  return reject (self, &peers[0], flags);
}

/* The error for GnuTLS's @rc in @what ("handshake", a read, a write). */
static void
set_gnutls_error (ZltTlsStream *self, int rc, GError **error)
{
  if ((rc == GNUTLS_E_PUSH_ERROR || rc == GNUTLS_E_PULL_ERROR) && self->io_errno != 0)
    {
      int errsv = self->io_errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv), "%s", g_strerror (errsv));
      return;
    }
  if (rc == GNUTLS_E_PREMATURE_TERMINATION)
    {
      g_set_error_literal (error, G_TLS_ERROR, G_TLS_ERROR_EOF,
                           _ ("TLS connection closed unexpectedly"));
      return;
    }
  g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC, _ ("TLS error: %s"), gnutls_strerror (rc));
}

#endif /* HAVE_GNUTLS */

#ifdef HAVE_GNUTLS
/* In TLS 1.3 the server's ticket comes after the handshake, as a record the client reads
 * past on its way to data: once GnuTLS has taken one, keep it for the next connection.
 * It came over this connection, whose handshake verified the server as ticket_key says
 * (a full handshake), or resumed a session that one did. */
static void
keep_ticket (ZltTlsStream *self)
{
  gnutls_datum_t data = { NULL, 0 };

  if ((gnutls_session_get_flags (self->session) & GNUTLS_SFLAGS_SESSION_TICKET) == 0)
    return;
  self->kept_ticket = TRUE;
  if (gnutls_session_get_data2 (self->session, &data) == 0 && data.size > 0)
    tickets_keep (self->ticket_key, &data);
  else if (data.data != NULL)
    gnutls_free (data.data);
  g_clear_pointer (&self->ticket_key, g_free);
}

/* What a client needs only until its handshake is done: the trust setting and the name
 * (verify_server() runs during the handshake; a TLS 1.3 server cannot ask for it again),
 * and, when the session was resumed, where to keep a ticket (a server issues none after
 * a resumed handshake: see handshake_step()). An idle data connection holds the rest. */
static void
drop_handshake_state (ZltTlsStream *self)
{
  g_clear_pointer (&self->options, zlt_tls_options_free);
  g_clear_pointer (&self->host, g_free);
  g_clear_error (&self->rejected);
  if (self->resumed)
    g_clear_pointer (&self->ticket_key, g_free);
}

static gboolean
check_usable (ZltTlsStream *self, GError **error)
{
  if (g_io_stream_is_closed (G_IO_STREAM (self)) || self->base == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, "stream is closed");
      return FALSE;
    }
  if (!self->handshaken)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED, "TLS handshake not done");
      return FALSE;
    }
  return TRUE;
}
#endif

#ifdef HAVE_GNUTLS
/* After GNUTLS_E_AGAIN: whether to try again (the socket is ready for @condition), or
 * FALSE with G_IO_ERROR_WOULD_BLOCK when not @blocking, or the wait's error. */
static gboolean
wait_again (ZltTlsStream *self, GIOCondition condition, gboolean blocking,
            GCancellable *cancellable, GError **error)
{
  if (!blocking)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "operation would block");
      return FALSE;
    }
  return g_socket_condition_wait (self->socket, condition, cancellable, error);
}
#endif

/* Reads one record's worth: @blocking waits for the socket, else
 * %G_IO_ERROR_WOULD_BLOCK. 0 at the peer's close_notify. */
static gssize
stream_read (ZltTlsStream *self, void *buffer, gsize count, gboolean blocking,
             GCancellable *cancellable, GError **error)
{
#ifdef HAVE_GNUTLS
  if (!check_usable (self, error))
    return -1;
  for (;;)
    {
      ssize_t n;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return -1;
      self->io_errno = 0;
      n = gnutls_record_recv (self->session, buffer, count);
      if (self->ticket_key != NULL && !self->kept_ticket)
        keep_ticket (self);
      if (n >= 0)
        return n;
      if (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_WARNING_ALERT_RECEIVED)
        continue;
      /* GnuTLS says "again" after a record that carried no data (a session ticket),
       * even with the next one in our read-ahead: read that first */
      if (n == GNUTLS_E_AGAIN && stream_has_record (self))
        continue;
      if (n == GNUTLS_E_AGAIN)
        {
          if (!wait_again (self, G_IO_IN, blocking, cancellable, error))
            return -1;
          continue;
        }
      set_gnutls_error (self, (int) n, error);
      return -1;
    }
#else
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "built without GnuTLS");
  return -1;
#endif
}

/* Writes one record (16 KiB of @buffer at most); see the top of the file for what a
 * write that would block means for the next one. */
static gssize
stream_write (ZltTlsStream *self, const void *buffer, gsize count, gboolean blocking,
              GCancellable *cancellable, GError **error)
{
#ifdef HAVE_GNUTLS
  if (!check_usable (self, error))
    return -1;
  for (;;)
    {
      ssize_t n;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return -1;
      self->io_errno = 0;
      n = gnutls_record_send (self->session, buffer, count);
      if (n >= 0)
        return n;
      if (n == GNUTLS_E_INTERRUPTED)
        continue;
      if (n == GNUTLS_E_AGAIN)
        {
          if (!wait_again (self, G_IO_OUT, blocking, cancellable, error))
            return -1;
          continue;
        }
      set_gnutls_error (self, (int) n, error);
      return -1;
    }
#else
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "built without GnuTLS");
  return -1;
#endif
}

/* Whether a read returns something without waiting for the socket: decrypted bytes
 * GnuTLS holds, or a whole record in the read-ahead buffer. */
static gboolean
stream_has_buffered (ZltTlsStream *self)
{
#ifdef HAVE_GNUTLS
  if (self->handshaken && !socket_gone (self)
      && (stream_has_record (self) || gnutls_record_check_pending (self->session) > 0))
    return TRUE;
#endif
  return FALSE;
}

static gboolean
stream_readable (ZltTlsStream *self)
{
  if (stream_has_buffered (self))
    return TRUE;
  return self->socket == NULL || g_socket_is_closed (self->socket)
         || g_socket_condition_check (self->socket, G_IO_IN | G_IO_HUP | G_IO_ERR) != 0;
}

static gboolean
stream_writable (ZltTlsStream *self)
{
  return self->socket == NULL || g_socket_is_closed (self->socket)
         || g_socket_condition_check (self->socket, G_IO_OUT | G_IO_HUP | G_IO_ERR) != 0;
}

static GSource *
stream_create_source (ZltTlsStream *self, GObject *pollable, GIOCondition condition,
                      GCancellable *cancellable)
{
  g_autoptr (GSource) child = NULL;

  if ((condition & G_IO_IN) ? stream_readable (self) : stream_writable (self))
    child = g_timeout_source_new (0);
  else
    {
      child = g_socket_create_source (self->socket, condition, NULL);
      /* it only wakes its parent: blocking it for its dispatch would make GLib 2.74
       * take its fd out of the poll set and put it back, a wakeup-fd write each */
      g_source_set_can_recurse (child, TRUE);
    }
  return g_pollable_source_new_full (pollable, child, cancellable);
}

/* Sends close_notify: -1 with @error, 0 when it would block, 1 when it is out. */
static int
stream_bye (ZltTlsStream *self, GError **error)
{
#ifdef HAVE_GNUTLS
  int rc;

  if (self->sent_bye || !self->handshaken || socket_gone (self))
    return 1;
  do
    {
      self->io_errno = 0;
      rc = gnutls_bye (self->session, GNUTLS_SHUT_WR);
    }
  while (rc == GNUTLS_E_INTERRUPTED);
  if (rc == GNUTLS_E_AGAIN)
    return 0;
  if (rc < 0)
    {
      set_gnutls_error (self, rc, error);
      return -1;
    }
  self->sent_bye = TRUE;
#endif
  return 1;
}

/* ---------------------------------------------------------------------------------
 * the halves: a pollable input and output stream over the connection */

#define ZLT_TYPE_TLS_STREAM_INPUT (zlt_tls_stream_input_get_type ())
G_DECLARE_FINAL_TYPE (ZltTlsStreamInput, zlt_tls_stream_input, ZLT, TLS_STREAM_INPUT, GInputStream)

struct _ZltTlsStreamInput
{
  GInputStream parent_instance;
  ZltTlsStream *conn; /* unowned: the connection owns us and clears this when it goes */
};

static void zlt_tls_stream_input_pollable_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ZltTlsStreamInput, zlt_tls_stream_input, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      zlt_tls_stream_input_pollable_init))

static gboolean
input_conn (ZltTlsStreamInput *self, GError **error)
{
  if (self->conn != NULL)
    return TRUE;
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, "stream is closed");
  return FALSE;
}

static gssize
input_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
            GError **error)
{
  ZltTlsStreamInput *self = ZLT_TLS_STREAM_INPUT (stream);

  if (!input_conn (self, error))
    return -1;
  return stream_read (self->conn, buffer, count, TRUE, cancellable, error);
}

static gboolean
input_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  return TRUE; /* TLS has no half-close for reading; the connection's close ends it */
}

static gboolean
input_can_poll (GPollableInputStream *stream)
{
  return ZLT_TLS_STREAM_INPUT (stream)->conn != NULL;
}

static gboolean
input_is_readable (GPollableInputStream *stream)
{
  ZltTlsStreamInput *self = ZLT_TLS_STREAM_INPUT (stream);

  return self->conn == NULL || stream_readable (self->conn);
}

static GSource *
input_create_source (GPollableInputStream *stream, GCancellable *cancellable)
{
  ZltTlsStreamInput *self = ZLT_TLS_STREAM_INPUT (stream);

  if (self->conn == NULL)
    return g_pollable_source_new_full (stream, g_timeout_source_new (0), cancellable);
  return stream_create_source (self->conn, G_OBJECT (stream), G_IO_IN, cancellable);
}

static gssize
input_read_nonblocking (GPollableInputStream *stream, void *buffer, gsize count, GError **error)
{
  ZltTlsStreamInput *self = ZLT_TLS_STREAM_INPUT (stream);

  if (!input_conn (self, error))
    return -1;
  return stream_read (self->conn, buffer, count, FALSE, NULL, error);
}

static void
zlt_tls_stream_input_pollable_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = input_can_poll;
  iface->is_readable = input_is_readable;
  iface->create_source = input_create_source;
  iface->read_nonblocking = input_read_nonblocking;
}

static void
zlt_tls_stream_input_class_init (ZltTlsStreamInputClass *klass)
{
  GInputStreamClass *input_class = G_INPUT_STREAM_CLASS (klass);

  input_class->read_fn = input_read;
  input_class->close_fn = input_close;
}

static void
zlt_tls_stream_input_init (ZltTlsStreamInput *self)
{
}

#define ZLT_TYPE_TLS_STREAM_OUTPUT (zlt_tls_stream_output_get_type ())
G_DECLARE_FINAL_TYPE (ZltTlsStreamOutput, zlt_tls_stream_output, ZLT, TLS_STREAM_OUTPUT,
                      GOutputStream)

struct _ZltTlsStreamOutput
{
  GOutputStream parent_instance;
  ZltTlsStream *conn; /* unowned, as the input's */
};

static void zlt_tls_stream_output_pollable_init (GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ZltTlsStreamOutput, zlt_tls_stream_output, G_TYPE_OUTPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                      zlt_tls_stream_output_pollable_init))

static gboolean
output_conn (ZltTlsStreamOutput *self, GError **error)
{
  if (self->conn != NULL)
    return TRUE;
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, "stream is closed");
  return FALSE;
}

static gssize
output_write (GOutputStream *stream, const void *buffer, gsize count, GCancellable *cancellable,
              GError **error)
{
  ZltTlsStreamOutput *self = ZLT_TLS_STREAM_OUTPUT (stream);

  if (!output_conn (self, error))
    return -1;
  return stream_write (self->conn, buffer, count, TRUE, cancellable, error);
}

/* close_notify: waits for the socket unless the whole connection is closing */
static gboolean
output_close (GOutputStream *stream, GCancellable *cancellable, GError **error)
{
  ZltTlsStreamOutput *self = ZLT_TLS_STREAM_OUTPUT (stream);
  int rc;

  if (self->conn == NULL)
    return TRUE;
  while ((rc = stream_bye (self->conn, error)) == 0)
    {
      if (self->conn->closing)
        return TRUE;
      if (!g_socket_condition_wait (self->conn->socket, G_IO_OUT, cancellable, error))
        return FALSE;
    }
  return rc > 0;
}

static gboolean output_close_ready (GSocket *socket, GIOCondition condition, gpointer user_data);

static void
output_close_step (GTask *task)
{
  ZltTlsStreamOutput *self = g_task_get_source_object (task);
  g_autoptr (GError) error = NULL;
  int rc = self->conn != NULL ? stream_bye (self->conn, &error) : 1;

  if (rc < 0)
    g_task_return_error (task, g_steal_pointer (&error));
  else if (rc > 0)
    g_task_return_boolean (task, TRUE);
  else
    {
      g_autoptr (GSource) source
          = g_socket_create_source (self->conn->socket, G_IO_OUT, g_task_get_cancellable (task));

      g_source_set_callback (source, G_SOURCE_FUNC (output_close_ready), g_object_ref (task),
                             g_object_unref);
      g_source_attach (source, g_task_get_context (task));
      return;
    }
  g_object_unref (task);
}

static gboolean
output_close_ready (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  GTask *task = user_data;

  if (!g_task_return_error_if_cancelled (task))
    output_close_step (g_object_ref (task));
  return G_SOURCE_REMOVE;
}

/* close_notify without a worker thread (GOutputStream's default would run close_fn in
 * one): the relay's half-close */
static void
output_close_async (GOutputStream *stream, int io_priority, GCancellable *cancellable,
                    GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (stream, cancellable, callback, user_data);

  g_task_set_source_tag (task, output_close_async);
  g_task_set_priority (task, io_priority);
  output_close_step (task);
}

static gboolean
output_close_finish (GOutputStream *stream, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
output_can_poll (GPollableOutputStream *stream)
{
  return ZLT_TLS_STREAM_OUTPUT (stream)->conn != NULL;
}

static gboolean
output_is_writable (GPollableOutputStream *stream)
{
  ZltTlsStreamOutput *self = ZLT_TLS_STREAM_OUTPUT (stream);

  return self->conn == NULL || stream_writable (self->conn);
}

static GSource *
output_create_source (GPollableOutputStream *stream, GCancellable *cancellable)
{
  ZltTlsStreamOutput *self = ZLT_TLS_STREAM_OUTPUT (stream);

  if (self->conn == NULL)
    return g_pollable_source_new_full (stream, g_timeout_source_new (0), cancellable);
  return stream_create_source (self->conn, G_OBJECT (stream), G_IO_OUT, cancellable);
}

static gssize
output_write_nonblocking (GPollableOutputStream *stream, const void *buffer, gsize count,
                          GError **error)
{
  ZltTlsStreamOutput *self = ZLT_TLS_STREAM_OUTPUT (stream);

  if (!output_conn (self, error))
    return -1;
  return stream_write (self->conn, buffer, count, FALSE, NULL, error);
}

static void
zlt_tls_stream_output_pollable_init (GPollableOutputStreamInterface *iface)
{
  iface->can_poll = output_can_poll;
  iface->is_writable = output_is_writable;
  iface->create_source = output_create_source;
  iface->write_nonblocking = output_write_nonblocking;
}

static void
zlt_tls_stream_output_class_init (ZltTlsStreamOutputClass *klass)
{
  GOutputStreamClass *output_class = G_OUTPUT_STREAM_CLASS (klass);

  output_class->write_fn = output_write;
  output_class->close_fn = output_close;
  output_class->close_async = output_close_async;
  output_class->close_finish = output_close_finish;
}

static void
zlt_tls_stream_output_init (ZltTlsStreamOutput *self)
{
}

/* ---------------------------------------------------------------------------------
 * the handshake */

#ifdef HAVE_GNUTLS

/* One step: 1 done, 0 it waits for the socket (@condition), -1 with @error. */
static int
handshake_step (ZltTlsStream *self, GIOCondition *condition, GError **error)
{
  int rc;

  do
    {
      self->io_errno = 0;
#ifdef HAVE_TICKETS
      if (self->ticket_due)
        rc = gnutls_session_ticket_send (self->session, 1, 0);
      else
#endif
        rc = gnutls_handshake (self->session);
    }
  /* GnuTLS may say "again" for a record it took and has no use for yet, with the next
   * one in our read-ahead (see pull_func): the socket would not tell */
  while (rc == GNUTLS_E_INTERRUPTED || rc == GNUTLS_E_WARNING_ALERT_RECEIVED
         || (rc == GNUTLS_E_AGAIN && gnutls_record_get_direction (self->session) == 0
             && stream_has_record (self)));
  /* the server sends one ticket after a full handshake and none after a resumed one (the
   * agent keeps using the ticket it has, until it is an hour old): less for both to make
   * and carry per connection */
  if (rc == 0 && self->is_server && !self->ticket_due && tickets_usable ()
      && gnutls_session_is_resumed (self->session) == 0
      && gnutls_protocol_get_version (self->session) == GNUTLS_TLS1_3)
    {
      self->ticket_due = TRUE;
      return handshake_step (self, condition, error);
    }
  if (rc == 0)
    {
      self->ticket_due = FALSE;
      self->handshaken = TRUE;
      self->resumed = gnutls_session_is_resumed (self->session) != 0;
      if (!self->is_server)
        drop_handshake_state (self);
      return 1;
    }
  if (rc == GNUTLS_E_AGAIN)
    {
      *condition = gnutls_record_get_direction (self->session) ? G_IO_OUT : G_IO_IN;
      return 0;
    }
  /* tell the peer (a refused certificate, a protocol error), so that it does not wait
   * for the rest of the handshake; best effort, never waiting */
  if (!socket_gone (self) && rc != GNUTLS_E_PUSH_ERROR && rc != GNUTLS_E_PULL_ERROR)
    gnutls_alert_send_appropriate (self->session, rc);
  if (self->rejected != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&self->rejected));
      return -1;
    }
  if ((rc == GNUTLS_E_PUSH_ERROR || rc == GNUTLS_E_PULL_ERROR) && self->io_errno != 0)
    {
      set_gnutls_error (self, rc, error);
      g_prefix_error (error, _ ("TLS handshake failed: "));
      return -1;
    }
  g_set_error (error, G_TLS_ERROR,
               rc == GNUTLS_E_UNEXPECTED_PACKET_LENGTH || rc == GNUTLS_E_UNSUPPORTED_VERSION_PACKET
                   ? G_TLS_ERROR_NOT_TLS
                   : G_TLS_ERROR_HANDSHAKE,
               _ ("TLS handshake failed: %s"), gnutls_strerror (rc));
  return -1;
}

#endif

static gboolean
zlt_tls_stream_handshake (GTlsConnection *conn, GCancellable *cancellable, GError **error)
{
#ifdef HAVE_GNUTLS
  ZltTlsStream *self = ZLT_TLS_STREAM (conn);

  for (;;)
    {
      GIOCondition condition = 0;
      int rc;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      rc = handshake_step (self, &condition, error);
      if (rc != 0)
        return rc > 0;
      if (!g_socket_condition_wait (self->socket, condition, cancellable, error))
        return FALSE;
    }
#else
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "built without GnuTLS");
  return FALSE;
#endif
}

#ifdef HAVE_GNUTLS
static gboolean handshake_ready (GSocket *socket, GIOCondition condition, gpointer user_data);

static void
handshake_async_step (GTask *task)
{
  ZltTlsStream *self = g_task_get_source_object (task);
  g_autoptr (GError) error = NULL;
  GIOCondition condition = 0;
  int rc;

  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }
  rc = handshake_step (self, &condition, &error);
  if (rc < 0)
    g_task_return_error (task, g_steal_pointer (&error));
  else if (rc > 0)
    g_task_return_boolean (task, TRUE);
  else
    {
      /* the socket's readiness drives the next step, on the caller's main context */
      g_autoptr (GSource) source
          = g_socket_create_source (self->socket, condition, g_task_get_cancellable (task));

      g_source_set_callback (source, G_SOURCE_FUNC (handshake_ready), task, g_object_unref);
      g_source_attach (source, g_task_get_context (task));
      return;
    }
  g_object_unref (task);
}

static gboolean
handshake_ready (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  handshake_async_step (g_object_ref (G_TASK (user_data)));
  return G_SOURCE_REMOVE;
}
#endif

static void
zlt_tls_stream_handshake_async (GTlsConnection *conn, int io_priority, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (conn, cancellable, callback, user_data);

  g_task_set_source_tag (task, zlt_tls_stream_handshake_async);
  g_task_set_priority (task, io_priority);
#ifdef HAVE_GNUTLS
  handshake_async_step (task);
#else
  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "built without GnuTLS");
  g_object_unref (task);
#endif
}

static gboolean
zlt_tls_stream_handshake_finish (GTlsConnection *conn, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, conn), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---------------------------------------------------------------------------------
 * GIOStream */

static GInputStream *
zlt_tls_stream_get_input_stream (GIOStream *stream)
{
  return ZLT_TLS_STREAM (stream)->input;
}

static GOutputStream *
zlt_tls_stream_get_output_stream (GIOStream *stream)
{
  return ZLT_TLS_STREAM (stream)->output;
}

/* close_notify if it can go out at once (never waits), then the socket */
static gboolean
zlt_tls_stream_close_fn (GIOStream *stream, GCancellable *cancellable, GError **error)
{
  ZltTlsStream *self = ZLT_TLS_STREAM (stream);

  self->closing = TRUE;
  if (self->output != NULL && !g_output_stream_is_closed (self->output))
    g_output_stream_close (self->output, NULL, NULL);
  if (self->input != NULL && !g_input_stream_is_closed (self->input))
    g_input_stream_close (self->input, NULL, NULL);
  return self->base == NULL || g_io_stream_close (G_IO_STREAM (self->base), cancellable, error);
}

/* synchronous: closing waits for nothing (GIOStream's default would use a thread) */
static void
zlt_tls_stream_close_async (GIOStream *stream, int io_priority, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (stream, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, zlt_tls_stream_close_async);
  if (zlt_tls_stream_close_fn (stream, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static gboolean
zlt_tls_stream_close_finish (GIOStream *stream, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---------------------------------------------------------------------------------
 * GObject */

static void
zlt_tls_stream_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltTlsStream *self = ZLT_TLS_STREAM (object);

  switch (prop_id)
    {
    case PROP_BASE_IO_STREAM:
      g_value_set_object (value, self->base);
      break;
    case PROP_REQUIRE_CLOSE_NOTIFY:
      g_value_set_boolean (value, TRUE);
      break;
    case PROP_REHANDSHAKE_MODE:
      g_value_set_enum (value, G_TLS_REHANDSHAKE_NEVER);
      break;
    case PROP_USE_SYSTEM_CERTDB:
      g_value_set_boolean (value, self->system_certdb);
      break;
    case PROP_DATABASE:
    case PROP_INTERACTION:
    case PROP_CERTIFICATE:
    case PROP_PEER_CERTIFICATE:
      /* none kept: the peer's certificate was checked on its DER in the handshake */
      g_value_set_object (value, NULL);
      break;
    case PROP_PEER_CERTIFICATE_ERRORS:
      g_value_set_flags (value, 0);
      break;
    case PROP_ADVERTISED_PROTOCOLS:
      g_value_set_boxed (value, NULL);
      break;
    case PROP_NEGOTIATED_PROTOCOL:
      g_value_set_string (value, NULL);
      break;
    case PROP_PROTOCOL_VERSION:
      {
        GTlsProtocolVersion version = G_TLS_PROTOCOL_VERSION_UNKNOWN;
#ifdef HAVE_GNUTLS
        if (self->handshaken)
          switch (gnutls_protocol_get_version (self->session))
            {
            case GNUTLS_TLS1_2:
              version = G_TLS_PROTOCOL_VERSION_TLS_1_2;
              break;
            case GNUTLS_TLS1_3:
              version = G_TLS_PROTOCOL_VERSION_TLS_1_3;
              break;
            default:
              version = G_TLS_PROTOCOL_VERSION_UNKNOWN;
              break;
            }
#endif
        g_value_set_enum (value, version);
        break;
      }
    case PROP_CIPHERSUITE_NAME:
#ifdef HAVE_GNUTLS
      if (self->handshaken)
        {
          g_value_take_string (value, gnutls_session_get_desc (self->session));
          break;
        }
#endif
      g_value_set_string (value, NULL);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
    }
}

static void
zlt_tls_stream_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  ZltTlsStream *self = ZLT_TLS_STREAM (object);

  switch (prop_id)
    {
    case PROP_BASE_IO_STREAM:
      self->base = g_value_dup_object (value);
      break;
    case PROP_REQUIRE_CLOSE_NOTIFY:
    case PROP_REHANDSHAKE_MODE:
    case PROP_USE_SYSTEM_CERTDB:
    case PROP_DATABASE:
    case PROP_INTERACTION:
    case PROP_CERTIFICATE:
    case PROP_ADVERTISED_PROTOCOLS:
      /* fixed for data connections */
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
    }
}

static gboolean
zlt_tls_stream_initable_init (GInitable *initable, GCancellable *cancellable, GError **error)
{
  ZltTlsStream *self = ZLT_TLS_STREAM (initable);

  if (!G_IS_SOCKET_CONNECTION (self->base))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "a data TLS stream needs a socket connection");
      return FALSE;
    }
  self->socket = g_socket_connection_get_socket (self->base);
  self->fd = g_socket_get_fd (self->socket);
  return TRUE;
}

static void
zlt_tls_stream_initable_iface_init (GInitableIface *iface)
{
  iface->init = zlt_tls_stream_initable_init;
}

static void
zlt_tls_stream_dispose (GObject *object)
{
  ZltTlsStream *self = ZLT_TLS_STREAM (object);

  /* GIOStream's closes the stream if nobody did: with the halves still there */
  G_OBJECT_CLASS (zlt_tls_stream_parent_class)->dispose (object);
  /* the halves may outlive us in someone's hands: they fail as closed from now on */
  if (self->input != NULL)
    ZLT_TLS_STREAM_INPUT (self->input)->conn = NULL;
  if (self->output != NULL)
    ZLT_TLS_STREAM_OUTPUT (self->output)->conn = NULL;
  g_clear_object (&self->input);
  g_clear_object (&self->output);
}

static void
zlt_tls_stream_finalize (GObject *object)
{
  ZltTlsStream *self = ZLT_TLS_STREAM (object);

#ifdef HAVE_GNUTLS
  if (self->session != NULL)
    gnutls_deinit (self->session);
#endif
  g_clear_object (&self->base);
  zlt_tls_options_free (self->options);
  g_free (self->host);
  g_free (self->ticket_key);
  g_clear_error (&self->rejected);
#ifdef HAVE_GNUTLS
  ahead_clear (self);
#endif
  G_OBJECT_CLASS (zlt_tls_stream_parent_class)->finalize (object);
}

static void
zlt_tls_stream_class_init (ZltTlsStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GIOStreamClass *io_class = G_IO_STREAM_CLASS (klass);
  GTlsConnectionClass *tls_class = G_TLS_CONNECTION_CLASS (klass);

  object_class->get_property = zlt_tls_stream_get_property;
  object_class->set_property = zlt_tls_stream_set_property;
  object_class->dispose = zlt_tls_stream_dispose;
  object_class->finalize = zlt_tls_stream_finalize;
  io_class->get_input_stream = zlt_tls_stream_get_input_stream;
  io_class->get_output_stream = zlt_tls_stream_get_output_stream;
  io_class->close_fn = zlt_tls_stream_close_fn;
  io_class->close_async = zlt_tls_stream_close_async;
  io_class->close_finish = zlt_tls_stream_close_finish;
  tls_class->handshake = zlt_tls_stream_handshake;
  tls_class->handshake_async = zlt_tls_stream_handshake_async;
  tls_class->handshake_finish = zlt_tls_stream_handshake_finish;

  g_object_class_override_property (object_class, PROP_BASE_IO_STREAM, "base-io-stream");
  g_object_class_override_property (object_class, PROP_REQUIRE_CLOSE_NOTIFY,
                                    "require-close-notify");
  g_object_class_override_property (object_class, PROP_REHANDSHAKE_MODE, "rehandshake-mode");
  g_object_class_override_property (object_class, PROP_USE_SYSTEM_CERTDB, "use-system-certdb");
  g_object_class_override_property (object_class, PROP_DATABASE, "database");
  g_object_class_override_property (object_class, PROP_INTERACTION, "interaction");
  g_object_class_override_property (object_class, PROP_CERTIFICATE, "certificate");
  g_object_class_override_property (object_class, PROP_PEER_CERTIFICATE, "peer-certificate");
  g_object_class_override_property (object_class, PROP_PEER_CERTIFICATE_ERRORS,
                                    "peer-certificate-errors");
  g_object_class_override_property (object_class, PROP_ADVERTISED_PROTOCOLS,
                                    "advertised-protocols");
  g_object_class_override_property (object_class, PROP_NEGOTIATED_PROTOCOL, "negotiated-protocol");
  g_object_class_override_property (object_class, PROP_PROTOCOL_VERSION, "protocol-version");
  g_object_class_override_property (object_class, PROP_CIPHERSUITE_NAME, "ciphersuite-name");
}

static void
zlt_tls_stream_init (ZltTlsStream *self)
{
  ZltTlsStreamInput *input = g_object_new (ZLT_TYPE_TLS_STREAM_INPUT, NULL);
  ZltTlsStreamOutput *output = g_object_new (ZLT_TYPE_TLS_STREAM_OUTPUT, NULL);

  self->fd = -1;
  input->conn = self;
  output->conn = self;
  self->input = G_INPUT_STREAM (input);
  self->output = G_OUTPUT_STREAM (output);
}

/* ---------------------------------------------------------------------------------
 * making one */

#ifdef HAVE_GNUTLS
static ZltTlsStream *
stream_new (GSocketConnection *base, gboolean is_server, GError **error)
{
  g_autoptr (ZltTlsStream) self = NULL;

  g_return_val_if_fail (G_IS_SOCKET_CONNECTION (base), NULL);
  self = g_initable_new (ZLT_TYPE_TLS_STREAM, NULL, error, "base-io-stream", base, NULL);
  if (self == NULL)
    return NULL;
  self->is_server = is_server;
  {
    gnutls_priority_t priority = shared_priority ();
    unsigned int flags = (is_server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK;
    int rc;

#ifdef HAVE_TICKETS
    /* a server sends its ticket itself (handshake_step()) */
    if (tickets_usable () && is_server)
      flags |= GNUTLS_NO_AUTO_SEND_TICKET;
#endif
    if (!tickets_usable ())
      flags |= GNUTLS_NO_TICKETS;
    rc = gnutls_init (&self->session, flags);

    if (rc == 0)
      rc = priority != NULL ? gnutls_priority_set (self->session, priority)
                            : gnutls_set_default_priority (self->session);
    if (rc < 0)
      {
        g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC, _ ("TLS error: %s"),
                     gnutls_strerror (rc));
        return NULL;
      }
    /* the client says "data connection" in its ClientHello, so that a server can pick
     * this TLS for it before the handshake (zlt_tls_stream_is_data_hello()); the server
     * chose on it already and does not answer it (GnuTLS would keep about 330 bytes of
     * ALPN state for each of its connections' lives) */
    if (rc == 0 && !is_server)
      {
        gnutls_datum_t alpn
            = { (unsigned char *) ZLT_TLS_DATA_ALPN, (unsigned int) strlen (ZLT_TLS_DATA_ALPN) };

        rc = gnutls_alpn_set_protocols (self->session, &alpn, 1, 0);
      }
    if (rc < 0)
      {
        g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC, _ ("TLS error: %s"),
                     gnutls_strerror (rc));
        return NULL;
      }
    gnutls_session_set_ptr (self->session, self);
    gnutls_transport_set_ptr (self->session, self);
    gnutls_transport_set_pull_function (self->session, pull_func);
    gnutls_transport_set_pull_timeout_function (self->session, pull_timeout_func);
    gnutls_transport_set_vec_push_function (self->session, push_func);
  }
  return g_steal_pointer (&self);
}
#endif

/**
 * zlt_tls_stream_new_client:
 * @base: the TCP connection to the server
 * @host: the server's name or address, as dialled: its certificate must be for it (unless
 *   pinned or not verified) and a name goes out as SNI
 * @options: (nullable): how to trust the server (zlt-tls.h)
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a client #GTlsConnection to handshake, or %NULL with @error
 */
GIOStream *
zlt_tls_stream_new_client (GSocketConnection *base, const char *host, const ZltTlsOptions *options,
                           GError **error)
{
#ifdef HAVE_GNUTLS
  g_autoptr (ZltTlsStream) self = NULL;
  gnutls_certificate_credentials_t creds = client_credentials_for (options, error);
  int rc;

  if (creds == NULL)
    return NULL;
  self = stream_new (base, FALSE, error);
  if (self == NULL)
    return NULL;
  self->options = zlt_tls_options_copy (options);
  self->host = g_strdup (host);
  self->system_certdb
      = zlt_tls_options_verify_peer (options)
        && (options == NULL || (options->ca_file == NULL && options->pinned_sha256 == NULL));
  rc = gnutls_credentials_set (self->session, GNUTLS_CRD_CERTIFICATE, creds);
  if (rc == 0 && host != NULL && !g_hostname_is_ip_address (host))
    rc = gnutls_server_name_set (self->session, GNUTLS_NAME_DNS, host, strlen (host));
  /* resume where a ticket is kept for this very host, port and trust setting */
  self->ticket_key = tickets_usable () ? ticket_key_for (base, host, options) : NULL;
  if (rc == 0 && self->ticket_key != NULL)
    self->offered_ticket = tickets_offer (self->ticket_key, self->session);
  if (rc < 0)
    {
      g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC, _ ("TLS error: %s"), gnutls_strerror (rc));
      return NULL;
    }
  return G_IO_STREAM (g_steal_pointer (&self));
#else
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "built without GnuTLS");
  return NULL;
#endif
}

/**
 * zlt_tls_stream_new_server:
 * @base: the TCP connection from the client
 * @certificate: the server's certificate with its key; its GnuTLS credentials are made
 *   at the first use and kept with it
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a server #GTlsConnection to handshake, or %NULL with @error
 */
GIOStream *
zlt_tls_stream_new_server (GSocketConnection *base, GTlsCertificate *certificate, GError **error)
{
#ifdef HAVE_GNUTLS
  g_autoptr (ZltTlsStream) self = NULL;
  ServerCredentials *sc;
  int rc;

  g_return_val_if_fail (G_IS_TLS_CERTIFICATE (certificate), NULL);
  sc = server_credentials_for (certificate, error);
  if (sc == NULL)
    return NULL;
  self = stream_new (base, TRUE, error);
  if (self == NULL)
    return NULL;
  rc = gnutls_credentials_set (self->session, GNUTLS_CRD_CERTIFICATE, sc->creds);
  /* session tickets: an agent's next data connection skips the certificate */
  if (rc == 0 && tickets_usable ())
    {
      rc = gnutls_session_ticket_enable_server (self->session, &sc->ticket_key);
      gnutls_db_set_cache_expiration (self->session, TICKET_LIFETIME_S);
    }
  if (rc < 0)
    {
      g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC, _ ("TLS error: %s"), gnutls_strerror (rc));
      return NULL;
    }
  return G_IO_STREAM (g_steal_pointer (&self));
#else
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "built without GnuTLS");
  return NULL;
#endif
}

/**
 * zlt_tls_stream_is_resumed:
 * @self: a data TLS connection, handshaken
 *
 * Returns: whether its handshake resumed an earlier session with a ticket (no
 *   certificate was sent or checked: see "the client's session tickets")
 */
gboolean
zlt_tls_stream_is_resumed (ZltTlsStream *self)
{
  g_return_val_if_fail (ZLT_IS_TLS_STREAM (self), FALSE);
  return self->resumed;
}

/**
 * zlt_tls_stream_has_buffered:
 * @self: a data TLS connection
 *
 * Whether a read would return bytes now without the socket being readable: a whole
 * record that came off the socket with an earlier one (the read-ahead under GnuTLS),
 * or decrypted bytes GnuTLS holds. The relay asks this before it waits on the socket
 * after a short read.
 *
 * Returns: %TRUE when bytes wait in the stream itself
 */
gboolean
zlt_tls_stream_has_buffered (ZltTlsStream *self)
{
  g_return_val_if_fail (ZLT_IS_TLS_STREAM (self), FALSE);
  return stream_has_buffered (self);
}

/**
 * zlt_tls_stream_offered_ticket:
 * @self: a client data TLS connection
 *
 * Returns: whether its ClientHello offered a kept session ticket (the server may still
 *   refuse it and do a full handshake)
 */
gboolean
zlt_tls_stream_offered_ticket (ZltTlsStream *self)
{
  g_return_val_if_fail (ZLT_IS_TLS_STREAM (self), FALSE);
  return self->offered_ticket;
}

/* ---------------------------------------------------------------------------------
 * telling a data connection by its ClientHello */

#ifdef HAVE_GNUTLS

#define TLS_RECORD_HANDSHAKE 0x16
#define TLS_HANDSHAKE_CLIENT_HELLO 0x01
#define TLS_EXTENSION_ALPN 16

static int
on_hello_extension (void *ctx, unsigned int tls_id, const unsigned char *data,
                    unsigned int data_size)
{
  gboolean *found = ctx;
  gsize want = strlen (ZLT_TLS_DATA_ALPN);
  gsize list_len, off;

  if (tls_id != TLS_EXTENSION_ALPN)
    return 0;
  /* ProtocolNameList: a 2-byte length, then names of a 1-byte length each */
  if (data_size < 2)
    return 0;
  list_len = (gsize) data[0] << 8 | data[1];
  if (list_len > data_size - 2)
    return 0;
  for (off = 2; off < 2 + list_len;)
    {
      gsize name_len = data[off];

      if (name_len == 0 || off + 1 + name_len > 2 + list_len)
        break;
      if (name_len == want && memcmp (data + off + 1, ZLT_TLS_DATA_ALPN, want) == 0)
        *found = TRUE;
      off += 1 + name_len;
    }
  return 0;
}

#endif

/**
 * zlt_tls_stream_is_data_hello:
 * @record: the first TLS record a client sent, whole (a server peeks it before the
 *   handshake)
 * @len: its length
 *
 * Whether @record is a ClientHello that offers %ZLT_TLS_DATA_ALPN: a data connection
 * dialled with zlt_tls_stream_new_client(). Anything else, malformed or truncated
 * included, is not.
 *
 * Returns: %TRUE for a data connection's ClientHello
 */
gboolean
zlt_tls_stream_is_data_hello (const guint8 *record, gsize len)
{
#ifdef HAVE_GNUTLS
  gsize record_len, hello_len;
  gnutls_datum_t body;
  gboolean found = FALSE;

  /* record header: type, version (2), length (2); handshake header: type, length (3) */
  if (record == NULL || len < 5 + 4 || record[0] != TLS_RECORD_HANDSHAKE || record[1] != 3)
    return FALSE;
  record_len = (gsize) record[3] << 8 | record[4];
  if (record_len > len - 5 || record_len < 4 || record[5] != TLS_HANDSHAKE_CLIENT_HELLO)
    return FALSE;
  hello_len = (gsize) record[6] << 16 | (gsize) record[7] << 8 | record[8];
  /* a ClientHello split over records is not ours: ours fits in one */
  if (hello_len > record_len - 4)
    return FALSE;
  body.data = (unsigned char *) record + 9;
  body.size = (unsigned int) hello_len;
  if (gnutls_ext_raw_parse (&found, on_hello_extension, &body, GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO)
      < 0)
    return FALSE;
  return found;
#else
  return FALSE;
#endif
}
