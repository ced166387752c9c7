/* Does libhdf5 itself keep memory when it opens corrupt files? (Fuzz/README.md, FuzzHDF5's slow RSS growth.)
 * Pure C, none of ml_tomo's code: each round copies a corpus file, overwrites 4 random bytes past the
 * signature, opens it and its "references" dataset, closes everything, and prints RSS and the number of
 * HDF5 objects still open.  GC=1 also calls H5garbage_collect() each round.
 *   gcc -O1 Fuzz/hdf5-corrupt-open-leak.c $(pkg-config --cflags --libs hdf5) -o /tmp/h5leak
 *   /tmp/h5leak 60001 Fuzz/Corpus/HDF5/*          (or under valgrind --leak-check=full with 3000)
 * The scratch file is /tmp/h5leak-input.h5. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static long rss(void){ FILE*f=fopen("/proc/self/statm","r"); long a,b; fscanf(f,"%ld %ld",&a,&b); fclose(f); return b*4/1024; }
int main(int argc,char**argv){
  H5Eset_auto2(H5E_DEFAULT,NULL,NULL);
  int n=atoi(argv[1]); int nf=argc-2; srand(1);
  static unsigned char buf[1<<20];
  for(int i=0;i<n;i++){
    FILE*in=fopen(argv[2+(i%nf)],"rb"); size_t sz=fread(buf,1,sizeof buf,in); fclose(in);
    for(int k=0;k<4;k++){ size_t pos=8+rand()%(sz>8?sz-8:1); buf[pos]=rand(); }
    FILE*o=fopen("/tmp/h5leak-input.h5","wb"); fwrite(buf,1,sz,o); fclose(o);
    hid_t f=H5Fopen("/tmp/h5leak-input.h5",H5F_ACC_RDONLY,H5P_DEFAULT);
    if(f>=0){ hid_t d=H5Dopen2(f,"references",H5P_DEFAULT); if(d>=0){ hid_t s=H5Dget_space(d); if(s>=0) H5Sclose(s); H5Dclose(d);} H5Fclose(f);}
    if(argc>0 && getenv("GC")) H5garbage_collect();
    if(i%10000==0) printf("%d rss %ld MB open %ld\n",i,rss(),(long)H5Fget_obj_count(H5F_OBJ_ALL,H5F_OBJ_ALL));
  }
  printf("end rss %ld MB open %ld\n",rss(),(long)H5Fget_obj_count(H5F_OBJ_ALL,H5F_OBJ_ALL));
}
