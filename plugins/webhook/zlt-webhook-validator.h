/* zlt-webhook-validator.h: the "webhook" validator: asks an https:// service whether a
 * token may open a tunnel, and with which rights */
#pragma once

#include "zlayer-tunnel.h"

G_BEGIN_DECLS

#define ZLT_TYPE_WEBHOOK_VALIDATOR (zlt_webhook_validator_get_type ())
G_DECLARE_FINAL_TYPE (ZltWebhookValidator, zlt_webhook_validator, ZLT, WEBHOOK_VALIDATOR,
                      ZltValidator)

G_END_DECLS
