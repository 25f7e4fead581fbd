/* zlt-error.h: the ZLT_ERROR domain */
#pragma once

#include <glib.h>

#include "zlt-version.h"

G_BEGIN_DECLS

#define ZLT_ERROR (zlt_error_quark ())

/**
 * ZltError:
 * Every failure the library reports has its own code, so callers (and the daemon's
 * D-Bus error mapping) can tell them apart.
 */
typedef enum
{
  ZLT_ERROR_FAILED,            /*< nick=failed >*/
  ZLT_ERROR_PROTOCOL,          /*< nick=protocol >*/
  ZLT_ERROR_TOO_SHORT,         /*< nick=too-short >*/
  ZLT_ERROR_INCOMPLETE,        /*< nick=incomplete >*/
  ZLT_ERROR_UNKNOWN_TYPE,      /*< nick=unknown-type >*/
  ZLT_ERROR_PAYLOAD_TOO_LARGE, /*< nick=payload-too-large >*/
  ZLT_ERROR_ENCODE,            /*< nick=encode >*/
  ZLT_ERROR_BAD_TOKEN,         /*< nick=bad-token >*/
  ZLT_ERROR_EXPIRED_TOKEN,     /*< nick=expired-token >*/
  ZLT_ERROR_NOT_ALLOWED,       /*< nick=not-allowed >*/
  ZLT_ERROR_DUPLICATE_NAME,    /*< nick=duplicate-name >*/
  ZLT_ERROR_PORT_IN_USE,       /*< nick=port-in-use >*/
  ZLT_ERROR_PORT_OUT_OF_RANGE, /*< nick=port-out-of-range >*/
  ZLT_ERROR_PORTS_EXHAUSTED,   /*< nick=ports-exhausted >*/
  ZLT_ERROR_LIMIT,             /*< nick=limit >*/
  ZLT_ERROR_NOT_FOUND,         /*< nick=not-found >*/
  ZLT_ERROR_INVALID_CONFIG,    /*< nick=invalid-config >*/
  ZLT_ERROR_PLUGIN,            /*< nick=plugin >*/
  ZLT_ERROR_TIMEOUT,           /*< nick=timeout >*/
  ZLT_ERROR_CLOSED,            /*< nick=closed >*/
  ZLT_ERROR_TLS,               /*< nick=tls >*/
  ZLT_ERROR_INSECURE,          /*< nick=insecure >*/
  ZLT_ERROR_LEGACY_REFUSED,    /*< nick=legacy-refused >*/
  ZLT_ERROR_IN_USE,            /*< nick=in-use >*/
  ZLT_ERROR_INVALID,           /*< nick=invalid >*/
} ZltError;

ZLT_AVAILABLE_IN_ALL
GQuark zlt_error_quark (void);

G_END_DECLS
