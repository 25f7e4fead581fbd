/* zlt-postgres-validator.h: the "postgres" validator: token hashes in a PostgreSQL
 * table that several servers share, revocations pushed to all of them by NOTIFY */
#pragma once

#include "zlayer-tunnel.h"

G_BEGIN_DECLS

#define ZLT_TYPE_POSTGRES_VALIDATOR (zlt_postgres_validator_get_type ())
G_DECLARE_FINAL_TYPE (ZltPostgresValidator, zlt_postgres_validator, ZLT, POSTGRES_VALIDATOR,
                      ZltValidator)

G_END_DECLS
