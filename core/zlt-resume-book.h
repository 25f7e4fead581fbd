/* zlt-resume-book.h: the server side of resuming a v2 agent's session, in one place.
 *
 * A session that authenticates with the resume capability is issued a secret (AuthOk
 * RESUME_SECRET). When its channel ends without a goodbye, the book holds its tunnel in
 * the registry — services, ports and all — for the grace period, never past its token's
 * expiry. A new connection that proves the secret over its own nonce (Auth RESUME MAC),
 * with the same token, takes the tunnel back, even from a channel the server still
 * thinks alive (::displace). Held tunnels are checked again when the validator's tokens
 * change. What the registry holds (leases of names and ports) is the registry's; when
 * and for whom is the book's. */
#pragma once

#include "zlt-credential.h"
#include "zlt-crypto.h"
#include "zlt-message.h"
#include "zlt-registry.h"
#include "zlt-validator.h"

G_BEGIN_DECLS

#define ZLT_TYPE_RESUME_BOOK (zlt_resume_book_get_type ())
G_DECLARE_FINAL_TYPE (ZltResumeBook, zlt_resume_book, ZLT, RESUME_BOOK, GObject)

ZltResumeBook *zlt_resume_book_new (ZltRegistry *registry);

/* A new session of @tunnel may resume: a fresh secret for its AuthOk in @secret.
 * @credential (nullable) is kept to check the held tunnel again later; @access_deadline
 * (monotonic µs, 0 for none) is what a resumed access session keeps. */
void zlt_resume_book_issue (ZltResumeBook *self, ZltTunnel *tunnel,
                            const guint8 token_hash[ZLT_HASH_SIZE], const ZltCredential *credential,
                            gint64 access_deadline, guint8 secret[ZLT_HASH_SIZE]);

/* @tunnel's channel ended without a goodbye: hold it for @grace_ms, cut to the token's
 * @token_expiry (Unix seconds, 0 for none); without an issued secret, or with no time
 * left, it is removed now. */
void zlt_resume_book_hold (ZltResumeBook *self, ZltTunnel *tunnel, guint grace_ms,
                           gint64 token_expiry);

/* A connection asks to resume @tunnel_id, proving the secret with @mac over @nonce and
 * holding the token of @token_hash. Returns the tunnel (borrowed), taken back from the
 * hold, or %NULL when the proof, the token or the tunnel does not match; a tunnel whose
 * channel still looks alive is first displaced (::displace). @access_deadline gets the
 * deadline the session had. */
ZltTunnel *zlt_resume_book_redeem (ZltResumeBook *self, const ZltUuid *tunnel_id,
                                   const guint8 nonce[ZLT_NONCE_SIZE],
                                   const guint8 mac[ZLT_HASH_SIZE],
                                   const guint8 token_hash[ZLT_HASH_SIZE], gint64 *access_deadline);

/* The validator's tokens changed: held tunnels whose credential it refuses now are
 * removed (no peer is there to ask). */
void zlt_resume_book_recheck (ZltResumeBook *self, ZltValidator *validator);

/* Forgets every secret (the server stops). */
void zlt_resume_book_clear (ZltResumeBook *self);

G_END_DECLS
