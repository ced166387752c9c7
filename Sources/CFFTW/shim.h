// Shim over single-precision FFTW3. Plans are made once per size (the planner is
// not thread-safe: callers serialise planning) and executed with the new-array
// functions from many threads (thread-safe).
#ifndef ML_TOMO_CFFTW_SHIM_H
#define ML_TOMO_CFFTW_SHIM_H
#include <fftw3.h>

static inline unsigned cfftw_estimate(void) { return FFTW_ESTIMATE; }
static inline unsigned cfftw_measure(void) { return FFTW_MEASURE; }
static inline unsigned cfftw_patient(void) { return FFTW_PATIENT; }
static inline unsigned cfftw_destroy_input(void) { return FFTW_DESTROY_INPUT; }
static inline unsigned cfftw_preserve_input(void) { return FFTW_PRESERVE_INPUT; }
static inline unsigned cfftw_unaligned(void) { return FFTW_UNALIGNED; }
static inline int cfftw_forward(void) { return FFTW_FORWARD; }
static inline int cfftw_backward(void) { return FFTW_BACKWARD; }
static inline const char *cfftw_version(void) { return fftwf_version; }

#endif
