/* zlt-standby-pool.h: the standby data connections a server keeps parked, per session
 * of a tunnel (PROTOCOL-v2.md §8).
 *
 * The server checks a standby request's MAC; the pool decides the rest and keeps the
 * books: each standby id of a session is accepted once (a replay window per session),
 * a session has at most its bound of connections parked or on their way (a reservation
 * from the 101 until the stream arrives, dropped after a timeout), each counts toward
 * its token's ZLT_QUOTA_STANDBY, and a parked connection is closed when its agent
 * closes it, when it sends anything (an agent waits for its binding), when its
 * lifetime is over, and when its session ends. A session is any pointer that stands for
 * one control session (the server's peer), so a resumed tunnel starts afresh. */
#pragma once

#include <gio/gio.h>

#include "zlt-binding.h"
#include "zlt-quota.h"
#include "zlt-types.h"

G_BEGIN_DECLS

#define ZLT_TYPE_STANDBY_POOL (zlt_standby_pool_get_type ())
G_DECLARE_FINAL_TYPE (ZltStandbyPool, zlt_standby_pool, ZLT, STANDBY_POOL, GObject)

/* @reserve_ms: how long an accepted request may take to hand over its stream */
ZltStandbyPool *zlt_standby_pool_new (ZltQuota *quota, guint reserve_ms);
void zlt_standby_pool_set_lifetime (ZltStandbyPool *self, guint lifetime_ms);

/* A standby request of @session (its MAC checked) whose token is @principal, with
 * @max connections at most. ZLT_DATA_ACCEPT reserves a place for its stream;
 * ZLT_DATA_FORBIDDEN for an id seen before in this session (or too old to tell);
 * ZLT_DATA_UNAVAILABLE when the session or the token holds its share. */
ZltDataVerdict zlt_standby_pool_request (ZltStandbyPool *self, gconstpointer session,
                                         const char *principal, guint max, guint64 standby_id);
/* The stream of an accepted request: parked, or closed with a reset when its
 * reservation is gone (it came too late, or its session ended). Takes a reference. */
void zlt_standby_pool_park (ZltStandbyPool *self, gconstpointer session, guint64 standby_id,
                            GIOStream *stream);
/* The connection of @session parked last, no longer parked; NULL when none is. */
GIOStream *zlt_standby_pool_take (ZltStandbyPool *self, gconstpointer session);
/* @session ended: its parked connections are closed (reset), its reservations and
 * replay window forgotten. */
void zlt_standby_pool_close_session (ZltStandbyPool *self, gconstpointer session);
void zlt_standby_pool_clear (ZltStandbyPool *self);

/* Parked connections, of @session or (NULL) of all sessions. */
guint zlt_standby_pool_get_n_parked (ZltStandbyPool *self, gconstpointer session);
/* Parked connections closed unused at the end of their lifetime, so far. */
guint64 zlt_standby_pool_get_n_retired (ZltStandbyPool *self);

G_END_DECLS
