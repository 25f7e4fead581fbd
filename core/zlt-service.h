/* zlt-service.h: placeholder until its owner lands it */
#pragma once

#include <glib.h>
