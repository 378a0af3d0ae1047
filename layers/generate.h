// generate.h — CoCa caption generation (placeholder while generate.c is written).
#ifndef VLT_GENERATE_H
#define VLT_GENERATE_H
#include "layers/coca.h"
#endif
