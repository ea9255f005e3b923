#Version 1.0.1
FROM ubuntu:latest
#from 指定等待拓展的父级元素,多个from则创建多个镜像
MAINTAINER wu.vkcyan "wu.vkcyan@gmail.com"
#maintainer 声明作者信息
USER root
#指令运行的指定用户
RUN apt-get update
RUN apt-get install -y nginx
#用来修改镜像,会在当前镜像创建镜像层,接下来的执行会在新的镜像上将继续执行
RUN touch test.txt && echo "abc" >>abc.txt
EXPOSE 80 8080 1038
expose 指定对外开放的端口号
ADD abc.txt /opt/
ADD /webapp/ opt/wedapp
ADD https://www.baidu.com/img/bd_logo1.png /opt/
add 向新镜像里面添加文件
ENV WEBAPP_PORT=9090
#env 设置容器运行的环境
WORKDIR /opt/
#workdir 为接下来的指令指定一个新的工作目录,当容器启动,指定的目录就是容器运行的当前工作路径
ENTYPOINT ["ls"]
CMD ["-a","-l"]
设置容器的默认运行命令
VOLUME ["/data","/var/www"]
volume在经向里面创建一个指定挂载点
ONBUILD ADD . /app/src
ONBUILD RUN echo "on build excuted" >> onbuild.txt
触发器指令,新的镜像使用from指令父镜为这个镜像的时候,就会触发onbbuild
